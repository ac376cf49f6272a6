"""The ``[images]`` policy: which references a run may use. Pure functions, checked before the registry is
asked anything (decision 0803).

A pattern is an ``fnmatch`` glob (case-sensitive; ``*`` also crosses ``/``) matched against two spellings of
the reference, and it matches when either matches: the canonical one (``docker.io/library/python:3.12``,
``123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1``) and the familiar one ``docker`` prints
(``python:3.12``, ``myorg/app:1``). A reference with a digest is spelled with it (``python:3.12@sha256:…``;
``python@sha256:…`` has no tag, so ``python:3.*`` does not match it).

Order: ``block`` first (any match refuses, whatever ``allow`` says), then ``allow`` (when it is not empty, one
pattern must match), then ``require_digest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from runvoy_core.errors import ImagePolicyRefused
from runvoy_core.images.config import ImagesConfig
from runvoy_core.images.reference import Reference, parse_reference


@dataclass(frozen=True)
class PolicyDecision:
    allowed: bool
    reason: str
    rule: str | None = None
    """The ``[images]`` entry that decided (``block = "..."``, ``allow = "..."``), None when none did."""


def _matches(pattern: str, reference: Reference) -> bool:
    return fnmatchcase(reference.canonical, pattern) or fnmatchcase(reference.familiar, pattern)


def evaluate(reference: Reference | str, config: ImagesConfig) -> PolicyDecision:
    """Decide, without raising on a refusal (an invalid reference still raises InvalidImageReference)."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    for pattern in config.block:
        if _matches(pattern, ref):
            return PolicyDecision(
                False,
                f"image {ref.familiar} is blocked by [images] block rule {pattern!r}",
                f"block = {pattern!r}",
            )
    if config.allow:
        allowed_by = next((p for p in config.allow if _matches(p, ref)), None)
        if allowed_by is None:
            shown = ", ".join(repr(p) for p in config.allow[:5]) + (", ..." if len(config.allow) > 5 else "")
            return PolicyDecision(
                False, f"image {ref.familiar} matches no [images] allow rule (allow = [{shown}])", None
            )
        rule: str | None = f"allow = {allowed_by!r}"
    else:
        rule = None
    if config.require_digest and ref.digest is None:
        return PolicyDecision(
            False,
            f"image {ref.familiar} has no digest, and [images] require_digest = true",
            "require_digest = true",
        )
    return PolicyDecision(True, f"image {ref.familiar} is allowed", rule)


def check_policy(reference: Reference | str, config: ImagesConfig) -> Reference:
    """Return the parsed reference, or raise ImagePolicyRefused naming the rule (exit 125)."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    decision = evaluate(ref, config)
    if decision.allowed:
        return ref
    if decision.rule == "require_digest = true":
        hint = (
            f"pin the image by digest: {ref.repository}@sha256:<digest> "
            f"(docker buildx imagetools inspect {ref.familiar} prints it)"
        )
    elif decision.rule is None:
        hint = "use an image an allow rule matches, or add a rule to [images] allow (docs/images.md)"
    else:
        hint = "use another image, or remove the rule from [images] block (docs/images.md)"
    raise ImagePolicyRefused(decision.reason, hint=hint, image=ref.canonical, rule=decision.rule)
