"""Masked secrets (decision 1901): for any secret long enough to mask, any output holding it in a supported
form, and any way of cutting that output into chunks, no form of the secret comes out."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core.masking import (
    MASK,
    MIN_SECRET_LENGTH,
    StreamMasker,
    TextMasker,
    secret_forms,
    text_masker,
)
from runvoy_core.models import LogEvent, LogPage

SECRETS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    min_size=MIN_SECRET_LENGTH,
    max_size=40,
)
FILLER = st.text(alphabet="xyz .:=,\n", max_size=30)


def _encoded(secret: str, form: str, prefix: str) -> bytes:
    """``secret`` as a command would print it: raw, base64 after ``prefix`` (any alignment), URL, JSON."""
    raw = secret.encode()
    if form == "raw":
        return raw
    if form == "base64":
        return base64.b64encode(prefix.encode() + raw)
    if form == "base64url":
        return base64.urlsafe_b64encode(prefix.encode() + raw)
    if form == "url":
        return quote(secret, safe="").encode()
    if form == "url_plus":
        return quote_plus(secret, safe="").encode()
    return json.dumps(secret).encode()


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, start = [], 0
    for point in [*points, len(data)]:
        out.append(data[start:point])
        start = point
    return out


def _visible(secret: str, output: bytes) -> list[bytes]:
    """Every form of the secret still in ``output``."""
    return [form for form in secret_forms([secret]) if form in output]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=SECRETS,
    form=st.sampled_from(["raw", "base64", "base64url", "url", "url_plus", "json"]),
    prefix=st.text(alphabet="ab:", max_size=5),
    before=FILLER,
    after=FILLER,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_no_split_of_the_output_lets_a_form_of_the_secret_through(
    secret: str, form: str, prefix: str, before: str, after: str, cuts: list[int]
) -> None:
    data = before.encode() + _encoded(secret, form, prefix) + after.encode()
    masker = StreamMasker(secret_forms([secret]))
    pieces = []
    for chunk in _chunks(data, cuts):
        pieces.append(masker.feed(chunk))
        assert masker.held <= masker.longest - 1
    pieces.append(masker.flush())
    output = b"".join(pieces)
    assert secret.encode() not in output
    assert _visible(secret, output) == []
    assert MASK.encode() in output


@settings(max_examples=200)
@given(secret=SECRETS, text=FILLER, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_output_without_the_secret_comes_out_unchanged_whatever_the_chunks(
    secret: str, text: str, cuts: list[int]
) -> None:
    forms = secret_forms([secret])
    data = text.encode()
    if any(f in data for f in forms):
        return
    masker = StreamMasker(forms)
    output = b"".join(masker.feed(c) for c in _chunks(data, cuts)) + masker.flush()
    assert output == data


@settings(max_examples=200)
@given(
    lines=st.lists(SECRETS, min_size=2, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_a_secret_of_several_lines_is_masked_across_chunks(lines: list[str], cuts: list[int]) -> None:
    secret = "\n".join(lines)
    data = b"key:\n" + secret.encode() + b"\ndone\n"
    masker = StreamMasker(secret_forms([secret]))
    output = b"".join(masker.feed(c) for c in _chunks(data, cuts)) + masker.flush()
    for line in lines:
        assert line.encode() not in output
    assert output.endswith(b"done\n")


def test_a_chunk_ending_a_line_is_let_out_whole_when_no_form_spans_lines() -> None:
    masker = StreamMasker(secret_forms(["correct-horse"]))
    assert masker.feed(b"one correct-horse\ntwo corr\n") == b"one ***\ntwo corr\n"
    assert masker.held == 0


def test_too_short_values_are_not_masked() -> None:
    assert secret_forms(["abc", ""]) == []
    assert text_masker(["abc"]) is None
    assert secret_forms(["abcd"])  # the minimum itself is masked


@settings(max_examples=200)
@given(
    secret=SECRETS,
    before=FILLER.filter(lambda s: "\n" not in s),
    after=FILLER.filter(lambda s: "\n" not in s),
)
def test_log_events_are_masked_and_a_grep_cannot_probe_the_secret(
    secret: str, before: str, after: str
) -> None:
    masker = TextMasker(secret_forms([secret]))
    event = LogEvent.model_validate({"timestamp": "2026-01-01T00:00:00Z", "message": before + secret + after})
    page = masker.mask_page(LogPage(events=[event], cursor="c"))
    assert secret not in page.events[0].message and MASK in page.events[0].message
    # the line held the secret's characters, but once masked it no longer matches them
    probe = secret[:MIN_SECRET_LENGTH]
    if probe not in before + MASK + after:
        assert masker.mask_page(LogPage(events=[event], cursor="c"), pattern=probe).events == []


def test_each_line_of_a_multi_line_secret_is_masked_in_events() -> None:
    masker = text_masker(["first-line\nsecond-line\nok"])
    assert masker is not None
    assert masker.mask("first-line") == MASK
    assert masker.mask("x second-line y") == f"x {MASK} y"
    assert masker.mask("ok") == "ok"  # shorter than the minimum: visible, as documented
