"""scripts/bootstrap.py: which uv wheel fits which machine, and fetching one from a package index (a PEP 503
index served on 127.0.0.1 here) with its sha256 checked (decision 2101)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import ROOT, clean_env, copy_checkout, uv

SCRIPT = ROOT / "scripts" / "bootstrap.py"
BARE_PATH = ["/usr/bin", "/bin"]
# the fetch tests need a PATH without uv (Debian packages none; a CI image might have put one there)
needs_no_system_uv = pytest.mark.skipif(
    shutil.which("uv", path=":".join(BARE_PATH)) is not None, reason="uv is installed in /usr/bin or /bin"
)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("runvoy_bootstrap", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bootstrap = _load()
Machine, Wheel = bootstrap.Machine, bootstrap.Wheel

# the platform tags of uv 0.13.9's wheels on PyPI, as published
UV_0_13_9 = [
    f"uv-0.13.9-py3-none-{platforms}.whl"
    for platforms in (
        "linux_armv6l",
        "macosx_10_12_x86_64",
        "macosx_11_0_arm64",
        "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
        "manylinux_2_17_armv7l.manylinux2014_armv7l.musllinux_1_1_armv7l",
        "manylinux_2_17_armv7l.manylinux2014_armv7l",
        "manylinux_2_17_i686.manylinux2014_i686",
        "manylinux_2_17_ppc64le.manylinux2014_ppc64le",
        "manylinux_2_17_s390x.manylinux2014_s390x",
        "manylinux_2_17_x86_64.manylinux2014_x86_64",
        "manylinux_2_28_aarch64",
        "manylinux_2_31_riscv64.musllinux_1_1_riscv64",
        "manylinux_2_31_riscv64",
        "musllinux_1_1_i686",
        "musllinux_1_1_x86_64",
        "win32",
        "win_amd64",
        "win_arm64",
    )
]
WHEELS = [Wheel(name, f"https://files.example/{name}", "0" * 64) for name in UV_0_13_9]


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (Machine("linux", "x86_64", (2, 36), False, None), "manylinux_2_17_x86_64.manylinux2014_x86_64"),
        (Machine("linux", "x86_64", None, True, None), "musllinux_1_1_x86_64"),
        (Machine("linux", "aarch64", (2, 39), False, None), "manylinux_2_28_aarch64"),
        (Machine("linux", "aarch64", (2, 27), False, None), "manylinux_2_17_aarch64.manylinux2014_aarch64"),
        (Machine("linux", "aarch64", None, True, None), "manylinux_2_17_aarch64.manylinux2014_aarch64"),
        (Machine("linux", "riscv64", (2, 35), False, None), "manylinux_2_31_riscv64"),
        (Machine("linux", "i686", (2, 31), False, None), "manylinux_2_17_i686"),
        (Machine("linux", "x86_64", (2, 12), False, None), None),  # CentOS 6's glibc is too old
        (Machine("darwin", "arm64", None, False, (14, 2)), "macosx_11_0_arm64"),
        (Machine("darwin", "x86_64", None, False, (10, 15)), "macosx_10_12_x86_64"),
        (Machine("darwin", "x86_64", None, False, (10, 11)), None),
        (Machine("windows", "amd64", None, False, None), "win_amd64"),
        (Machine("windows", "arm64", None, False, None), "win_arm64"),
        (Machine("windows", "32", None, False, None), "win32"),
    ],
)
def test_the_wheel_that_fits_the_machine(machine: object, expected: str | None) -> None:
    picked = bootstrap.pick_wheel(WHEELS, machine)
    if expected is None:
        assert picked is None
    else:
        assert picked is not None and picked.filename.startswith(f"uv-0.13.9-py3-none-{expected}")


_machines = st.builds(
    Machine,
    st.sampled_from(["linux", "darwin", "windows"]),
    st.sampled_from(["x86_64", "aarch64", "arm64", "i686", "armv7l", "riscv64", "amd64", "32", "ppc64le"]),
    st.none() | st.tuples(st.integers(2, 3), st.integers(0, 45)),
    st.booleans(),
    st.none() | st.tuples(st.integers(10, 16), st.integers(0, 15)),
)


@given(machine=_machines, order=st.randoms(use_true_random=False))
def test_the_pick_fits_and_does_not_depend_on_the_index_order(machine: object, order: object) -> None:
    shuffled = list(WHEELS)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    picked = bootstrap.pick_wheel(shuffled, machine)
    assert picked == bootstrap.pick_wheel(WHEELS, machine)
    if picked is not None:
        tags = picked.filename.removesuffix(".whl").split("-")[-1].split(".")
        assert any(bootstrap._tag_rank(tag, machine) is not None for tag in tags)


def test_the_current_machine_is_one_uv_publishes_for() -> None:
    assert bootstrap.pick_wheel(WHEELS, bootstrap.this_machine()) is not None


# -- fetching from an index -----------------------------------------------------------------------------------


def _fake_uv_wheel(version: str) -> bytes:
    """A wheel whose "uv" is a script that answers --version the way uv does."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(f"uv-{version}.data/scripts/uv", f'#!/bin/sh\necho "uv {version} (fake)"\n')
    return buffer.getvalue()


@pytest.fixture
def index(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PEP 503 (HTML) index on 127.0.0.1, the form a company mirror serves; its folder to fill."""
    root = tmp_path / "index"
    (root / "simple" / "uv").mkdir(parents=True)
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", root
    finally:
        server.shutdown()
        server.server_close()


def _publish(root: Path, payload: bytes, sha256: str) -> None:
    machine = bootstrap.this_machine()
    tag = {
        "linux": f"musllinux_1_1_{machine.arch}" if machine.musl else f"manylinux_2_17_{machine.arch}",
        "darwin": f"macosx_10_12_{machine.arch}",
    }[machine.system]
    name = f"uv-{bootstrap.UV_VERSION}-py3-none-{tag}.whl"
    (root / "files").mkdir(exist_ok=True)
    (root / "files" / name).write_bytes(payload)
    links = f'<a href="../../files/{name}#sha256={sha256}">{name}</a>'
    (root / "simple" / "uv" / "index.html").write_text(f"<html><body>{links}</body></html>")


def _print_uv(tmp_path: Path, index_url: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(tmp_path / "home", BARE_PATH)
    env["UV_DEFAULT_INDEX"] = index_url
    # no uv on this PATH, and an isolated interpreter that sees no `uv` package
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), "--print-uv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="the fake uv is a shell script")
@needs_no_system_uv
def test_uv_is_fetched_from_the_index_checked_and_cached(tmp_path: Path, index: tuple[str, Path]) -> None:
    url, root = index
    payload = _fake_uv_wheel(bootstrap.UV_VERSION)
    _publish(root, payload, hashlib.sha256(payload).hexdigest())
    done = _print_uv(tmp_path, url)
    assert done.returncode == 0, done.stderr
    uv = Path(done.stdout.strip())
    assert uv == tmp_path / "home" / ".cache" / "runvoy" / "bootstrap" / f"uv-{bootstrap.UV_VERSION}" / "uv"
    assert subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.startswith("uv ")
    assert "fetching uv-" in done.stderr
    # the next run finds the cached copy and asks the index nothing
    (root / "simple" / "uv" / "index.html").unlink()
    again = _print_uv(tmp_path, url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(uv) and "fetching" not in again.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="the fake uv is a shell script")
@needs_no_system_uv
def test_a_wheel_that_does_not_match_its_sha256_is_refused(tmp_path: Path, index: tuple[str, Path]) -> None:
    url, root = index
    _publish(root, _fake_uv_wheel(bootstrap.UV_VERSION), "ab" * 32)
    done = _print_uv(tmp_path, url.replace("http://", "http://user:s3cret@"))
    assert done.returncode == 1
    assert "does not match the index's sha256" in done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
    assert not any((tmp_path / "home").glob(".cache/runvoy/bootstrap/uv-*"))


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_CACHE_HOME is the cache folder on Linux only")
@needs_no_system_uv
def test_without_a_writable_cache_folder_uv_goes_to_the_checkouts_tools(
    tmp_path: Path, index: tuple[str, Path]
) -> None:
    url, root = index
    payload = _fake_uv_wheel(bootstrap.UV_VERSION)
    _publish(root, payload, hashlib.sha256(payload).hexdigest())
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, checkout / "scripts" / "bootstrap.py")
    env = clean_env(tmp_path / "home", BARE_PATH)
    env["UV_DEFAULT_INDEX"] = url
    (tmp_path / "not-a-folder").write_text("")
    env["XDG_CACHE_HOME"] = str(tmp_path / "not-a-folder" / "cache")  # as a read-only HOME would: no mkdir
    done = subprocess.run(
        [sys.executable, "-I", str(checkout / "scripts" / "bootstrap.py"), "--print-uv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(checkout / ".tools" / "bootstrap" / f"uv-{bootstrap.UV_VERSION}" / "uv")


@needs_no_system_uv
def test_offline_with_no_uv_anywhere_is_one_clear_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home", BARE_PATH)
    env["UV_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), "--print-uv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "bootstrap: uv is not installed and UV_OFFLINE is set: install uv, or unset UV_OFFLINE"
    ]


def test_a_python_older_than_runvoy_needs_is_told_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bootstrap, "MIN_PYTHON", (sys.version_info.major, sys.version_info.minor + 1))
    assert bootstrap.main(["scripts/bootstrap.py", "run", "echo hello"]) == 2
    message = capsys.readouterr().err
    assert "runvoy needs Python" in message and "Run this script with a newer python" in message


def test_a_home_that_cannot_be_written_keeps_uvs_cache_in_the_checkout(tmp_path: Path) -> None:
    """A CI container run as a user whose HOME is not writable (HOME=/, say): uv's cache goes to .tools/."""
    checkout = copy_checkout(tmp_path / "checkout")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "uv").symlink_to(uv())  # uv is there: only its cache is in question
    env = clean_env(tmp_path / "home", [str(tools), *BARE_PATH])
    del env["UV_CACHE_DIR"]
    (tmp_path / "not-a-folder").write_text("")
    env["XDG_CACHE_HOME"] = str(tmp_path / "not-a-folder" / "cache")  # uv's default cache is under it too
    done = subprocess.run(
        [sys.executable, "-I", "scripts/bootstrap.py", "run", "echo hello"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.splitlines() == ["hello"]
    assert (checkout / ".tools" / "uv-cache").is_dir()
