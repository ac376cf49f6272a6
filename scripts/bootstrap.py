#!/usr/bin/env python3
"""Runs runvoy from this checkout on any Python >= 3.11 with nothing installed (decision 2101).

    python3 scripts/bootstrap.py run "echo hello"    # = uv run runvoy run "echo hello"
    python3 scripts/bootstrap.py --print-uv          # prints the path of a usable uv

Every argument goes to runvoy, except a lone ``--print-uv``. uv is the one found first of: ``uv`` on PATH,
the ``uv`` package of this Python, the copy this script fetched before, or else the ``uv`` wheel of
``UV_VERSION`` fetched from the package index (``UV_DEFAULT_INDEX``, ``UV_INDEX_URL`` or ``PIP_INDEX_URL``,
else PyPI), checked against the index's sha256 and unpacked into the user's cache folder. So neither pip nor
the venv module is needed, nothing is installed into the Python (PEP 668 "externally managed" Pythons refuse
that), and nothing is downloaded from outside the package index. ``uv run`` then creates the checkout's
``.venv`` with this Python (if there is none yet) and runs runvoy in it. ``UV_OFFLINE=1`` forbids the download.

Standard library only, and no syntax newer than Python 3.8, so that an older Python gets a clear message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple

UV_VERSION = "0.13.9"  # fetched when no uv is found; the version the project's lock is written with
MIN_UV = (0, 9, 0)  # an older uv found on the machine is passed over: it may not read uv.lock
MIN_PYTHON = (3, 11)
ROOT = Path(__file__).resolve().parent.parent
_TIMEOUT = 60.0


class BootstrapError(Exception):
    """A failure the user can act on: printed as one message, no traceback."""


class Wheel(NamedTuple):
    filename: str
    url: str
    sha256: str
    authorization: str | None = None  # the index's credentials, for a file on the index's own host


def _say(message: str) -> None:
    print(f"bootstrap: {message}", file=sys.stderr, flush=True)


def _redact(url: str) -> str:
    # an index URL may carry a user and password; they never reach the terminal
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _uv_version(uv: str) -> tuple[int, ...] | None:
    try:
        done = subprocess.run(
            [uv, "--version"], capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"uv (\d+\.\d+\.\d+)", done.stdout.strip())
    return _version_tuple(match.group(1)) if done.returncode == 0 and match else None


def _usable(uv: str | None) -> bool:
    version = _uv_version(uv) if uv else None
    return version is not None and version >= MIN_UV


# -- which wheel fits this machine -------------------------------------------------------------------------------


class Machine(NamedTuple):
    system: str  # "linux", "darwin", "windows"
    arch: str  # as wheel tags spell it: x86_64, aarch64, arm64, i686, armv7l, ...
    glibc: tuple[int, int] | None  # None on musl (or not Linux)
    musl: bool
    macos: tuple[int, int] | None


def this_machine() -> Machine:
    system = platform.system().lower()
    arch = platform.machine().lower()
    if system == "windows":
        arch = {"amd64": "amd64", "x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64"}.get(arch, arch)
        if sys.maxsize <= 2**32:
            arch = "32"
        return Machine("windows", arch, None, False, None)
    if system == "darwin":
        major, minor = (*_version_tuple(platform.mac_ver()[0] or "10.0"), 0, 0)[:2]
        return Machine(
            "darwin", "arm64" if arch in ("arm64", "aarch64") else arch, None, False, (major, minor)
        )
    arch = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "i586": "i686"}.get(arch, arch)
    if arch == "x86_64" and sys.maxsize <= 2**32:
        arch = "i686"  # a 32-bit Python on a 64-bit kernel
    glibc: tuple[int, int] | None = None
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        found = ""
    if found.startswith("glibc "):
        major, minor = (*_version_tuple(found), 0, 0)[:2]
        glibc = (major, minor)
    musl = glibc is None and any(Path("/lib").glob("ld-musl-*.so.1"))
    return Machine("linux", arch, glibc, musl, None)


_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _tag_rank(tag: str, machine: Machine) -> tuple[int, int] | None:
    """How well one platform tag fits: None if it does not, else a rank where higher is a closer fit."""
    if machine.system == "windows":
        return (0, 0) if tag == f"win{'' if machine.arch == '32' else '_'}{machine.arch}" else None
    if machine.system == "darwin":
        match = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", tag)
        if not match or match.group(3) not in (machine.arch, "universal2") or machine.macos is None:
            return None
        needed = (int(match.group(1)), int(match.group(2)))
        return needed if needed <= machine.macos else None
    match = re.fullmatch(r"(manylinux|musllinux)_(\d+)_(\d+)_(\w+)", tag)
    legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", tag)
    if match:
        family, needed, arch = match.group(1), (int(match.group(2)), int(match.group(3))), match.group(4)
    elif legacy:
        family, needed, arch = "manylinux", _LEGACY_MANYLINUX[legacy.group(1)], legacy.group(2)
    else:
        return None
    if arch != machine.arch:
        return None
    if family == "musllinux":
        return needed if machine.musl else None  # uv's musl wheels ask for musl 1.1, older than any in use
    return needed if machine.glibc is not None and needed <= machine.glibc else None


def pick_wheel(wheels: list[Wheel], machine: Machine) -> Wheel | None:
    """The wheel of the fitting platform tag that asks for the newest libc (or macOS), as pip would pick."""
    best: tuple[tuple[int, int], str, Wheel] | None = None
    for wheel in wheels:
        if not wheel.filename.endswith(".whl"):
            continue
        platforms = wheel.filename[: -len(".whl")].split("-")[-1].split(".")
        ranks = [rank for rank in (_tag_rank(tag, machine) for tag in platforms) if rank is not None]
        # equal fits are settled by name, so the pick does not depend on the order the index lists them in
        if ranks and (best is None or (max(ranks), wheel.filename) > best[:2]):
            best = (max(ranks), wheel.filename, wheel)
    return best[2] if best else None


# -- the package index (PEP 691 JSON, or PEP 503 HTML from a mirror) ----------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def index_url() -> str:
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(name):
            return os.environ[name].rstrip("/")
    return "https://pypi.org/simple"


def _credentials(url: str) -> tuple[str, str | None]:
    """The URL without its user and password (urllib sends neither), and the Basic authorization they make."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, "")), f"Basic {token}"


class _NoCredentialsElsewhere(urllib.request.HTTPRedirectHandler):
    """A redirect to another host (a mirror's blob store) does not get the index's credentials."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.remove_header("Authorization")
        return new


def _open(url: str, authorization: str | None, accept: str | None = None) -> Any:
    headers = {"Accept": accept} if accept else {}
    if authorization:
        headers["Authorization"] = authorization
    opener = urllib.request.build_opener(_NoCredentialsElsewhere)
    return opener.open(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT)


def list_wheels(index: str, version: str) -> list[Wheel]:
    bare, authorization = _credentials(index)
    page = f"{bare}/uv/"
    try:
        with _open(page, authorization, "application/vnd.pypi.simple.v1+json, text/html;q=0.1") as response:
            kind = response.headers.get("Content-Type", "")
            body = response.read()
            page = response.geturl()
    except OSError as error:
        raise BootstrapError(f"cannot read the package index {_redact(page)}: {error}") from None
    prefix = f"uv-{version}-"
    wheels: list[Wheel] = []
    index_host = urllib.parse.urlsplit(page).netloc

    def wheel(filename: str, url: str, sha256: str) -> Wheel:
        same_host = urllib.parse.urlsplit(url).netloc == index_host
        return Wheel(filename, url, sha256, authorization if same_host else None)

    if "json" in kind:
        for entry in json.loads(body)["files"]:
            sha256 = entry.get("hashes", {}).get("sha256")
            if entry["filename"].startswith(prefix) and sha256 and not entry.get("yanked"):
                wheels.append(wheel(entry["filename"], urllib.parse.urljoin(page, entry["url"]), sha256))
        return wheels
    links = _Links()
    links.feed(body.decode("utf-8", "replace"))
    for href in links.hrefs:
        url, _, fragment = urllib.parse.urljoin(page, href).partition("#")
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        if filename.startswith(prefix) and fragment.startswith("sha256="):
            wheels.append(wheel(filename, url, fragment[len("sha256=") :]))
    return wheels


def _download(wheel: Wheel, into: Path) -> Path:
    target = into / wheel.filename
    digest = hashlib.sha256()
    try:
        with _open(wheel.url, wheel.authorization) as response, target.open("wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
    except OSError as error:
        raise BootstrapError(f"cannot download {wheel.filename}: {error}") from None
    if digest.hexdigest() != wheel.sha256.lower():
        raise BootstrapError(f"{wheel.filename} does not match the index's sha256: refusing to use it")
    return target


# -- finding or fetching uv ---------------------------------------------------------------------------------------


def cache_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "runvoy" / "bootstrap"


def _exe(name: str) -> str:
    return f"{name}.exe" if sys.platform == "win32" else name


def _creatable(folder: Path) -> bool:
    """Whether the folder exists writable, or could be made: its nearest existing parent is a writable folder."""
    for existing in (folder, *folder.parents):
        if existing.exists():
            return existing.is_dir() and os.access(existing, os.W_OK)
    return False


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def fetch_uv(version: str = UV_VERSION) -> Path:
    # a CI container may run as a user whose HOME is not writable: then the checkout's ignored .tools/ holds it
    places = [cache_dir() / f"uv-{version}", ROOT / ".tools" / "bootstrap" / f"uv-{version}"]
    for place in places:
        if _usable(str(place / _exe("uv"))):
            return place / _exe("uv")
    final = next((place for place in places if _writable(place.parent)), None)
    if final is None:
        raise BootstrapError(f"no writable folder for uv: neither {places[0].parent} nor {places[1].parent}")
    uv = final / _exe("uv")
    if os.environ.get("UV_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise BootstrapError("uv is not installed and UV_OFFLINE is set: install uv, or unset UV_OFFLINE")
    index = index_url()
    machine = this_machine()
    wheel = pick_wheel(list_wheels(index, version), machine)
    if wheel is None:
        raise BootstrapError(
            f"the index {_redact(index)} has no uv {version} wheel for this machine ({machine.system} "
            f"{machine.arch}): install uv yourself (https://docs.astral.sh/uv/) and run this again"
        )
    _say(f"fetching {wheel.filename} from {_redact(index)}")
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".uv-") as scratch:
        archive = _download(wheel, Path(scratch))
        unpacked = Path(scratch) / "unpacked"
        unpacked.mkdir()
        with zipfile.ZipFile(archive) as zipped:
            for name in (_exe("uv"), _exe("uvx")):
                member = f"uv-{version}.data/scripts/{name}"
                if member in zipped.namelist():
                    (unpacked / name).write_bytes(zipped.read(member))
                    (unpacked / name).chmod(0o755)
        if not (unpacked / _exe("uv")).is_file():
            raise BootstrapError(f"{wheel.filename} holds no uv executable")
        try:
            os.replace(unpacked, final)
        except OSError:
            if not _usable(str(uv)):  # another bootstrap that ran at the same time put its copy there first
                shutil.rmtree(final, ignore_errors=True)
                os.replace(unpacked, final)
    if not _usable(str(uv)):
        raise BootstrapError(f"the fetched {uv} does not run on this machine")
    return uv


def find_uv() -> Path:
    on_path = shutil.which("uv")
    if on_path and _usable(on_path):
        return Path(on_path)
    try:
        import uv as uv_package  # type: ignore[import-not-found, unused-ignore]  # `pip install uv` puts it there

        from_package = str(uv_package.find_uv_bin())
    except (ImportError, FileNotFoundError, AttributeError):
        from_package = None
    if from_package and _usable(from_package):
        return Path(from_package)
    return fetch_uv()


def main(argv: list[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        _say(
            f"runvoy needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; {sys.executable} is "
            f"{platform.python_version()}. Run this script with a newer python, e.g. python3.12 {argv[0]}"
        )
        return 2
    try:
        uv = find_uv()
    except (BootstrapError, OSError) as error:  # a full disk, a read-only folder: one line, no traceback
        _say(str(error))
        return 1
    if argv[1:] == ["--print-uv"]:
        print(uv)
        return 0
    # uv never downloads a Python (that would come from outside the package index). A new .venv is made with
    # the Python that ran this script; an existing one is kept, as uv would recreate it for another Python.
    command = [str(uv), "run", "--project", str(ROOT), "--no-python-downloads"]
    if not os.environ.get("UV_CACHE_DIR") and not _creatable(cache_dir()):
        # uv's own cache would sit beside ours in a home that cannot be written: keep it in the checkout
        command += ["--cache-dir", str(ROOT / ".tools" / "uv-cache")]
    venv = ROOT / os.environ.get("UV_PROJECT_ENVIRONMENT", ".venv")
    if not os.environ.get("UV_PYTHON") and not venv.exists():
        command += ["--python", sys.executable]
    command += ["runvoy", *argv[1:]]
    if sys.platform == "win32":
        return subprocess.run(command, check=False).returncode
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
