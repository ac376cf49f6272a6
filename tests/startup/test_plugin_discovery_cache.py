"""Entry points are remembered between commands and read again when something is installed (decision 1411)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec
import pytest

from runvoy_core.plugins.discovery import cache_file, find_entry_points, fingerprint
from runvoy_core.plugins.manager import load_plugins

GROUP = "runvoy"


def _install(site: Path, name: str) -> None:
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {name}_module\n")


def test_the_first_call_scans_and_remembers(tmp_path: Path) -> None:
    found = find_entry_points(GROUP, tmp_path)
    assert "local" in {ep.name for ep in found}
    cached = msgspec.json.decode(cache_file(tmp_path, GROUP).read_bytes())
    assert cached["fingerprint"] == [list(item) for item in fingerprint()]
    assert {e[0] for e in cached["entry_points"]} == {ep.name for ep in found}


def test_an_unchanged_environment_is_answered_from_the_cache(tmp_path: Path) -> None:
    find_entry_points(GROUP, tmp_path)
    path = cache_file(tmp_path, GROUP)
    cached = msgspec.json.decode(path.read_bytes())
    # a planted entry that no distribution declares: seen only if the cache is what answers
    cached["entry_points"].append(["planted", "planted_module", "planted-dist", "9.9"])
    path.write_bytes(msgspec.json.encode(cached))
    names = {ep.name: ep for ep in find_entry_points(GROUP, tmp_path)}
    assert names["planted"].dist == "planted-dist" and names["planted"].version == "9.9"


def test_installing_a_plugin_is_seen_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = {ep.name for ep in find_entry_points(GROUP, tmp_path / "cache")}
    assert "newplugin" not in before
    _install(site, "newplugin")  # adds a directory: the site directory's mtime changes
    after = {ep.name: ep for ep in find_entry_points(GROUP, tmp_path / "cache")}
    assert after["newplugin"].dist == "newplugin" and after["newplugin"].value == "newplugin_module"
    # and uninstalling it too
    for child in (site / "newplugin-1.0.dist-info").iterdir():
        child.unlink()
    (site / "newplugin-1.0.dist-info").rmdir()
    os.utime(site, ns=(0, 10**18))  # some file systems keep the mtime of a quick add+remove; make sure
    assert "newplugin" not in {ep.name for ep in find_entry_points(GROUP, tmp_path / "cache")}


@pytest.mark.parametrize("garbage", [b"", b"{", b"[]", b'{"format": 1}', b'{"format": 1, "fingerprint": 3}'])
def test_a_damaged_cache_is_read_again(tmp_path: Path, garbage: bytes) -> None:
    path = cache_file(tmp_path, GROUP)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(garbage)
    assert "local" in {ep.name for ep in find_entry_points(GROUP, tmp_path)}
    assert msgspec.json.decode(path.read_bytes())["format"] == 1


def test_an_unwritable_cache_directory_still_finds_plugins(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert "local" in {ep.name for ep in find_entry_points(GROUP, blocker / "cache")}


def test_load_plugins_reports_a_cached_broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache keeps the distribution name and version that failure reports and `runvoy providers` show."""
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "brokenplug")
    (site / "brokenplug_module.py").write_text("raise ImportError('needs a missing SDK')\n")
    monkeypatch.syspath_prepend(str(site))
    for _ in range(2):  # the scan, then the cache
        loaded = load_plugins()
        failure = next(f for f in loaded.failures if f.plugin == "brokenplug")
        assert failure.distribution == "brokenplug" and "missing SDK" in failure.error
        sys.modules.pop("brokenplug_module", None)
