"""Where the CLI keeps its API keys: ``tokens.json`` next to the config file, one key per server, readable by
its owner only (0600, in a directory of the owner's). ``RUNVOY_TOKEN`` wins over the file (CI, containers).

The file is written whole to a new file created 0600 and renamed over the old one, so a reader never sees
half of it and the key is never in a file others can read, not even for an instant (decision 1517).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

from runvoy_core.errors import ConfigError

TOKEN_ENV = "RUNVOY_TOKEN"
FILE_NAME = "tokens.json"
MAX_FILE_BYTES = 1 << 20


def token_path() -> Path:
    from runvoy_core.paths import default_config_path

    return default_config_path().parent / FILE_NAME


def _read(path: Path) -> dict[str, str]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} can be read by other users (mode {stat.S_IMODE(info.st_mode):o})",
            hint=f"it holds API keys: chmod 600 {path}, then revoke and replace the keys in it (runvoy login)",
        )
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path} is larger than {MAX_FILE_BYTES} bytes", hint="remove it and runvoy login again"
        )
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise ConfigError(
            f"{path} is not a runvoy token file", hint="remove it and runvoy login again"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path} is not a runvoy token file", hint="remove it and runvoy login again")
    return {str(k): v for k, v in data.items()}


def _write(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask; this is not
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def stored_token(server: str, path: Path | None = None) -> str | None:
    """The key stored for ``server`` (its normalized URL), if any."""
    return _read(path or token_path()).get(server)


def save_token(server: str, token: str, path: Path | None = None) -> Path:
    target = path or token_path()
    data = _read(target)
    data[server] = token
    _write(target, data)
    return target


def remove_token(server: str, path: Path | None = None) -> bool:
    """Forget the key of ``server``; False when none was stored."""
    target = path or token_path()
    data = _read(target)
    if server not in data:
        return False
    del data[server]
    _write(target, data)
    return True


def resolve_token(server: str, explicit: str | None = None) -> str | None:
    """The key to use with ``server``: the one given, else RUNVOY_TOKEN, else the token file's."""
    if explicit:
        return explicit
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    return stored_token(server)
