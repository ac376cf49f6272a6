"""The resolution cache: a hit asks no registry, in this process and in the next one, for cache_ttl seconds.
Requests are counted by a proxy in front of the registry (runvoy_core.testing.faultproxy with faults off)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runvoy_core.images.config import ImagesConfig
from runvoy_core.images.registry import (
    ImageResolver,
    Platform,
    RegistryCredentials,
    clear_process_cache,
    resolve,
)
from runvoy_core.testing.faultproxy import Chaos, FaultProxy
from runvoy_core.testing.registry import PASSWORD, USER, Registry

AMD64 = Platform.for_architecture("x86_64")


@pytest.fixture
def counted(plain_registry: Registry) -> Iterator[tuple[FaultProxy, Chaos]]:
    chaos = Chaos(seed=0, enabled=False)
    with FaultProxy(plain_registry.server.url, chaos, name="registry") as proxy:
        yield proxy, chaos


def _config(proxy: FaultProxy, ttl: float = 300) -> ImagesConfig:
    return ImagesConfig(cache_ttl=ttl, registries={f"127.0.0.1:{proxy.port}": {"plain_http": True}})


def test_a_cache_hit_makes_no_request(counted: tuple[FaultProxy, Chaos], cache_dir: Path) -> None:
    proxy, chaos = counted
    resolver = ImageResolver(_config(proxy), cache_dir=cache_dir)
    reference = f"127.0.0.1:{proxy.port}/team/app:1.0"
    first = resolver.resolve(reference, AMD64)
    assert len(chaos.log) == 1 and not first.from_cache  # one round trip: the manifest
    second = resolver.resolve(reference, AMD64)
    assert len(chaos.log) == 1
    assert second.from_cache and second == first
    resolver.resolve(reference, Platform.for_architecture("arm64"))  # another platform is another entry
    assert len(chaos.log) == 2


def test_the_next_process_hits_the_cache_on_disk(counted: tuple[FaultProxy, Chaos], cache_dir: Path) -> None:
    proxy, chaos = counted
    reference = f"127.0.0.1:{proxy.port}/team/app:1.0"
    first = resolve(reference, AMD64, config=_config(proxy), cache_dir=cache_dir)
    assert len(chaos.log) == 1
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from runvoy_core.images.config import ImagesConfig\n"
        "from runvoy_core.images.registry import Platform, resolve\n"
        f"config = ImagesConfig.model_validate_json({_config(proxy).model_dump_json()!r})\n"
        f"r = resolve({reference!r}, Platform.for_architecture('x86_64'), config=config, cache_dir=Path(sys.argv[1]))\n"
        "print(json.dumps({'pinned': r.pinned, 'from_cache': r.from_cache}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(cache_dir)], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == {"pinned": first.pinned, "from_cache": True}
    assert len(chaos.log) == 1
    stored = (cache_dir / "images.json").read_text()
    assert first.digest in stored


def test_an_expired_entry_is_resolved_again(counted: tuple[FaultProxy, Chaos], cache_dir: Path) -> None:
    proxy, chaos = counted
    reference = f"127.0.0.1:{proxy.port}/team/app:1.0"
    resolve(reference, AMD64, config=_config(proxy, ttl=60), cache_dir=cache_dir)
    path = cache_dir / "images.json"
    data = json.loads(path.read_text())
    data["entries"][0]["resolved_at"] -= 61  # as if resolved 61 s ago
    path.write_text(json.dumps(data))
    clear_process_cache()
    again = resolve(reference, AMD64, config=_config(proxy, ttl=60), cache_dir=cache_dir)
    assert not again.from_cache
    assert len(chaos.log) == 2


def test_a_zero_ttl_turns_the_cache_off(counted: tuple[FaultProxy, Chaos], cache_dir: Path) -> None:
    proxy, chaos = counted
    resolver = ImageResolver(_config(proxy, ttl=0), cache_dir=cache_dir)
    for _ in range(2):
        resolver.resolve(f"127.0.0.1:{proxy.port}/team/app:1.0", AMD64)
    assert len(chaos.log) == 2
    assert not (cache_dir / "images.json").exists()


def test_a_damaged_cache_file_is_ignored(counted: tuple[FaultProxy, Chaos], cache_dir: Path) -> None:
    proxy, chaos = counted
    cache_dir.mkdir(parents=True)
    (cache_dir / "images.json").write_text("{not json")
    resolved = resolve(
        f"127.0.0.1:{proxy.port}/team/app:1.0", AMD64, config=_config(proxy), cache_dir=cache_dir
    )
    assert not resolved.from_cache and len(chaos.log) == 1
    assert json.loads((cache_dir / "images.json").read_text())["entries"][0]["digest"] == resolved.digest


def test_the_cache_file_holds_no_secret(tls_registry: Registry, cache_dir: Path) -> None:
    assert tls_registry.tls is not None
    config = ImagesConfig(registries={tls_registry.host: {"ca_bundle": tls_registry.tls.ca_cert}})
    resolve(
        f"{tls_registry.host}/private/app:2.0",
        AMD64,
        RegistryCredentials(USER, PASSWORD),
        config=config,
        cache_dir=cache_dir,
    )
    stored = (cache_dir / "images.json").read_text()
    assert PASSWORD not in stored and USER not in stored


def test_the_debug_log_names_the_pinned_image_and_no_secret(
    tls_registry: Registry, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runvoy_core.logging import configure_logging

    assert tls_registry.tls is not None
    config = ImagesConfig(registries={tls_registry.host: {"ca_bundle": tls_registry.tls.ca_cert}})
    configure_logging("json", "debug")
    try:
        resolver = ImageResolver(config, cache_dir=cache_dir)
        for _ in range(2):
            resolved = resolver.resolve(
                f"{tls_registry.host}/private/app:2.0", AMD64, RegistryCredentials(USER, PASSWORD)
            )
    finally:
        configure_logging()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    events = [line for line in lines if line.get("event") == "image.resolved"]
    assert [(e["pinned"], e["cached"]) for e in events] == [(resolved.pinned, False), (resolved.pinned, True)]
    assert PASSWORD not in json.dumps(lines)


def test_a_warm_check_imports_neither_the_network_stack_nor_structlog(
    counted: tuple[FaultProxy, Chaos], cache_dir: Path
) -> None:
    proxy, _ = counted
    reference = f"127.0.0.1:{proxy.port}/team/app:1.0"
    resolve(reference, AMD64, config=_config(proxy), cache_dir=cache_dir)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from runvoy_core.images.config import ImagesConfig\n"
        "from runvoy_core.images.registry import Platform, resolve\n"
        f"config = ImagesConfig.model_validate_json({_config(proxy).model_dump_json()!r})\n"
        f"assert resolve({reference!r}, Platform(), config=config, cache_dir=Path(sys.argv[1])).from_cache\n"
        "print(sorted({'ssl', 'urllib.request', 'http.client', 'structlog'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(cache_dir)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
