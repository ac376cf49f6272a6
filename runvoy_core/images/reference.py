"""Image references, parsed and normalised the way Docker does (github.com/distribution/reference).

``python`` is ``docker.io/library/python:latest``; ``myorg/app:1`` is ``docker.io/myorg/app:1``; the first
path component is a registry host when it contains a ``.`` or a ``:`` (a port), is ``localhost``, or has an
upper-case letter; ``index.docker.io`` is ``docker.io``. A repository path is lower case, a tag is at most 128
characters of ``[A-Za-z0-9_.-]`` not starting with ``.`` or ``-``, and a digest is ``sha256:`` with 64 (or
``sha512:`` with 128) lower-case hex digits. Anything else is refused with an ``InvalidImageReference`` naming
the part that is wrong.

The expressions below accept the same language as Docker's, written without nested quantifiers over the same
characters so that Python's backtracking engine stays linear on hostile input (Go's engine is an automaton).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runvoy_core.errors import InvalidImageReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
_INPUT_LENGTH_MAX = 1024  # a name, a tag and a sha512 digest fit well inside; longer input is refused unread

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_HEX64 = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    """A normalised reference. ``tag`` is ``latest`` when neither a tag nor a digest was given."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path``: what a registry's policy and credentials are about."""
        return f"{self.domain}/{self.path}"

    @property
    def canonical(self) -> str:
        """The full form: it re-parses to this same reference."""
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short form ``docker`` prints (``python:3.12``, ``myorg/app:1``, ``ghcr.io/o/app:1``)."""
        path = self.path
        first = path.split("/", 1)[0]
        if self.domain == DEFAULT_DOMAIN and not (any(c in first for c in ".:") or first == "localhost"):
            name = path.removeprefix(f"{OFFICIAL_NAMESPACE}/") if path.count("/") == 1 else path
        else:
            # docker.io/my.org/app must keep its host: my.org/app would name the registry my.org
            name = self.repository
        if self.tag is not None:
            name += f":{self.tag}"
        if self.digest is not None:
            name += f"@{self.digest}"
        return name

    @property
    def manifest_reference(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def pinned(self, digest: str) -> str:
        """``domain/path@digest``: the reference a task runs, immune to a tag moving."""
        return f"{self.repository}@{digest}"

    def __str__(self) -> str:
        return self.canonical


def _refuse(reference: str, problem: str) -> InvalidImageReference:
    shown = reference if len(reference) <= 80 else reference[:77] + "..."
    return InvalidImageReference(f"invalid image reference {shown!r}: {problem}", reference=shown)


def parse_reference(text: str) -> Reference:
    """Parse and normalise ``text``; raise ``InvalidImageReference`` (a UsageError) naming what is wrong."""
    if not isinstance(text, str):
        raise InvalidImageReference(f"invalid image reference {text!r}: not a string")
    if not text:
        raise _refuse(text, "it is empty")
    if len(text) > _INPUT_LENGTH_MAX:
        raise _refuse(text, f"it is longer than {_INPUT_LENGTH_MAX} characters")
    if any(ch.isspace() for ch in text):
        raise _refuse(text, "it contains white space")

    remainder, at, digest = text.partition("@")
    digest_or_none: str | None = None
    if at:
        if not _DIGEST.fullmatch(digest):
            raise _refuse(text, "the digest after '@' must be sha256: and 64 lower-case hex digits")
        digest_or_none = digest

    tag: str | None = None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        tag = remainder[colon + 1 :]
        remainder = remainder[:colon]
        if not _TAG.fullmatch(tag):
            raise _refuse(
                text,
                f"the tag {tag!r} must be 1-128 characters of letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-'",
            )
    if not remainder:
        raise _refuse(text, "the repository name is missing")

    domain, path = _split_domain(remainder)
    if not _DOMAIN.fullmatch(domain):
        raise _refuse(text, f"the registry host {domain!r} is not a host name with an optional numeric port")
    if not path:
        raise _refuse(text, "the repository name is missing after the registry host")
    for component in path.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if _PATH_COMPONENT.fullmatch(component.lower()):
            raise _refuse(text, "the repository name must be lower case")
        if not component:
            raise _refuse(text, "the repository name has an empty path component ('//' or a trailing '/')")
        raise _refuse(
            text,
            f"the repository path component {component!r} must be lower-case letters and digits "
            "separated by '.', '_', '__' or dashes",
        )
    if domain == DEFAULT_DOMAIN and _HEX64.fullmatch(path.removeprefix(f"{OFFICIAL_NAMESPACE}/")):
        raise _refuse(text, "a 64-digit hex string is an image id, not a repository name")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _refuse(text, f"the repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if tag is None and digest_or_none is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest_or_none)


def registry_of(image: str) -> str | None:
    """The registry host of ``image`` as references name it (``docker.io`` for Docker Hub); None for a
    reference that does not parse (the image check, when it runs, has refused it already)."""
    try:
        return parse_reference(image).domain
    except InvalidImageReference:
        return None


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    is_host = slash and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first)
    if not is_host:
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return domain, path
