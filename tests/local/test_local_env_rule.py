"""The env rule's config key (``[providers.local] pass_env``): its documented form, property-tested, and the
rule itself on generated environments (decision 0209)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_cli.main import cli
from runvoy_core.providers.local import envrule
from runvoy_core.providers.local.config import MAX_PASS_ENV, LocalConfig
from runvoy_core.records import RecordError as ValidationError

FORM = re.compile(r"\A[A-Za-z_*?][A-Za-z0-9_*?]{0,127}\Z")
"""docs/configuration.md: a variable name or a glob of one (* and ?), at most 128 characters, at most 64."""

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INSIDE = st.from_regex(FORM)
ANYTHING = st.one_of(
    st.text(max_size=140),
    st.sampled_from(["", "1ABC", "A-B", "A=B", "[AB]*", "A B", "Ä", "*" * 129, "AWS_*", "*", "LC_?"]),
)
VALUES: st.SearchStrategy[Any] = st.one_of(
    st.lists(st.one_of(INSIDE, ANYTHING), max_size=MAX_PASS_ENV + 3),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=True),
    ANYTHING,
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


def in_form(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= MAX_PASS_ENV
        and all(isinstance(v, str) and FORM.match(v) for v in value)
    )


@PROPERTY
@given(value=VALUES)
def test_pass_env_accepts_exactly_its_documented_form(value: Any) -> None:
    try:
        config = LocalConfig.model_validate({"pass_env": value})
    except ValidationError as exc:
        assert not in_form(value), value
        assert "pass_env" in str(exc)
        return
    assert in_form(value), value
    assert config.pass_env == value


@pytest.fixture
def write_config() -> Callable[[str], None]:
    path = Path(os.environ["RUNVOY_CONFIG"])

    def write(text: str) -> None:
        path.write_text(text, encoding="utf-8")

    return write


@settings(PROPERTY, max_examples=15)
@given(value=st.one_of(st.lists(st.one_of(INSIDE, ANYTHING), max_size=4), ANYTHING))
def test_config_validate_gives_pass_env_a_clean_answer(
    value: Any, write_config: Callable[[str], None]
) -> None:
    write_config(f"[providers.local]\npass_env = {json.dumps(value)}\n")
    result = CliRunner().invoke(cli, ["config", "validate"], prog_name="runvoy", catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    if in_form(value):
        assert result.exit_code == 0, result.stderr
    else:
        # (json.dumps escapes astral characters as surrogate pairs, which TOML refuses: also a clean answer)
        assert result.exit_code == 125 and ("pass_env" in result.stderr or "TOML" in result.stderr), (
            result.stderr
        )


NAMES = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z")


@PROPERTY
@given(
    environ=st.dictionaries(
        st.one_of(NAMES, st.sampled_from(["PATH", "LC_ALL", "RUNVOY_FENCE", "runvoy_lock", "SEC_DB"])),
        st.just("v"),
        max_size=12,
    ),
    pass_env=st.lists(st.one_of(INSIDE, st.sampled_from(["*", "SEC_*", "RUNVOY_*"])), max_size=3),
    prefix=st.sampled_from(["", "SEC_"]),
)
def test_the_rule_passes_the_base_set_and_the_chosen_names_never_runvoy_or_secrets(
    environ: dict[str, str], pass_env: list[str], prefix: str
) -> None:
    passed = set(envrule.passed_names(environ, pass_env, prefix))
    for name in environ:
        wanted = name in envrule.BASE_NAMES or any(fnmatchcase(name, g) for g in ["LC_*", *pass_env])
        forbidden = name.upper().startswith("RUNVOY_") or (prefix and name.startswith(prefix))
        assert (name in passed) == (wanted and not forbidden), (name, passed)
