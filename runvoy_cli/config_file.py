"""Writing a profile into the config file: the other profiles, comments and layout kept (tomlkit), and the
file replaced atomically, so an interrupted write leaves the old file or the new one, never half of either
(decision 2112)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from runvoy_core.errors import ConfigError

DEFAULT_PROFILE = "default"


def read_document(path: Path) -> Any:
    """The file as a tomlkit document (an empty one when there is no file); ConfigError when unreadable."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}",
            hint=f"fix or move {path}; nothing was written",
        ) from None
    try:
        return tomlkit.parse(text)
    except (TOMLKitError, RecursionError) as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}", hint=f"fix or move {path}; nothing was written"
        ) from None


def profile_values(document: Any, profile: str) -> dict[str, Any]:
    """What the file sets for this profile itself (plain values; the top level for the default profile)."""
    data = document.unwrap() if hasattr(document, "unwrap") else dict(document)
    if profile == DEFAULT_PROFILE:
        data.pop("profiles", None)
        return data
    profiles = data.get("profiles")
    found = profiles.get(profile) if isinstance(profiles, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _table(parent: Any, key: str, *, super_table: bool = False) -> Any:
    import tomlkit

    found = parent.get(key)
    if found is None or not hasattr(found, "get"):
        found = tomlkit.table(is_super_table=super_table)
        parent[key] = found
    return found


def set_profile(
    document: Any, profile: str, top: Mapping[str, Any], provider: str, section: Mapping[str, Any]
) -> None:
    """Set the profile's top-level keys and its ``[providers.PROVIDER]`` keys; everything else is kept."""
    target = (
        document
        if profile == DEFAULT_PROFILE
        else _table(_table(document, "profiles", super_table=True), profile)
    )
    for key, value in top.items():
        target[key] = value
    if section:
        import tomlkit

        providers = _table(target, "providers", super_table=True)
        created = provider not in providers
        table = _table(providers, provider)
        for key, value in section.items():
            table[key] = value
        if created:
            table.add(tomlkit.nl())  # a blank line before whatever table follows, as a person would write


def render(document: Any) -> str:
    import tomlkit

    return tomlkit.dumps(document)


@contextlib.contextmanager
def staged(path: Path, text: str) -> Iterator[Path]:
    """Write ``text`` next to ``path`` in a temporary file and yield it (for checking); it replaces ``path``
    only when the block ends without an exception, and is removed otherwise (Ctrl-C included)."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the directory of {path}: {exc.strerror or exc}") from None
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600  # a config file may hold provider secrets; a new one is the user's alone
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    temp = Path(temp_name)
    replaced = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        yield temp
        os.replace(temp, path)
        replaced = True
        _fsync_directory(directory)
    finally:
        if not replaced:
            with contextlib.suppress(OSError):
                temp.unlink()


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str, check: Callable[[Path], None] | None = None) -> None:
    """Replace ``path`` with ``text`` after ``check`` accepted the staged file (it raises to refuse)."""
    try:
        with staged(path, text) as temp:
            if check is not None:
                check(temp)
    except PermissionError as exc:
        raise ConfigError(f"cannot write config file {path}: {exc.strerror or exc}") from None
