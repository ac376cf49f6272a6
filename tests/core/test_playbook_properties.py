"""Every playbook key, generated inside and outside its documented form: a playbook is either refused with a
clean error naming the key, or becomes a valid request (decision 0917)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core.errors import RunvoyError
from runvoy_core.models import ExecutionRequest
from runvoy_core.playbook import Playbook, Step, parse_playbook

SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", "nan", ".inf", "-1", "0", "1e400", "١", "５s", "99999999999999999d", "10m", "2GiB"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), SCALARS, max_size=3),
)
PLAYBOOK_KEYS = sorted(set(Playbook.model_fields) - {"steps"})
STEP_KEYS = sorted(Step.model_fields)

PROPERTY = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _answer(text: str) -> ExecutionRequest | RunvoyError:
    """The playbook as a request, or the clean error refusing it; anything else fails the test."""
    try:
        return parse_playbook(text, source="p.yaml").to_request()
    except RunvoyError as exc:
        assert exc.exit_code == 125 and "\n" not in exc.message.strip(), exc.message
        return exc


@pytest.mark.parametrize("key", PLAYBOOK_KEYS)
@PROPERTY
@given(value=VALUES)
def test_a_playbook_key_is_refused_by_name_or_becomes_a_valid_request(key: str, value: Any) -> None:
    text = yaml.safe_dump({key: value, "steps": [{"run": "true"}]}, allow_unicode=True)
    answer = _answer(text)
    if isinstance(answer, RunvoyError):
        assert key in answer.message or "lock" in answer.message, answer.message


@pytest.mark.parametrize("key", STEP_KEYS)
@PROPERTY
@given(value=VALUES)
def test_a_step_key_is_refused_by_name_or_becomes_a_valid_request(key: str, value: Any) -> None:
    step = {"run": "true", key: value}
    answer = _answer(yaml.safe_dump({"steps": [step]}, allow_unicode=True))
    if isinstance(answer, RunvoyError):
        assert key in answer.message, answer.message


@PROPERTY
@given(
    key=st.sampled_from([*PLAYBOOK_KEYS, "steps"]),
    first=SCALARS,
    second=SCALARS,
    in_step=st.booleans(),
)
def test_a_key_given_twice_is_refused(key: str, first: Any, second: Any, in_step: bool) -> None:
    one, two = (
        yaml.safe_dump(first).split("\n...")[0].strip(),
        yaml.safe_dump(second).split("\n...")[0].strip(),
    )
    if in_step:
        text = f"steps:\n  - run: 'true'\n    {key}: {one}\n    {key}: {two}\n"
    else:
        text = f"{key}: {one}\nsteps: [{{run: 'true'}}]\n{key}: {two}\n"
    answer = _answer(text)
    assert isinstance(answer, RunvoyError), text
    assert "given twice" in answer.message or "not valid YAML" in answer.message, answer.message


@PROPERTY
@given(depth=st.integers(33, 5000), kind=st.sampled_from(["[", "{a: "]))
def test_deep_nesting_is_refused(depth: int, kind: str) -> None:
    close = "]" if kind == "[" else "}"
    answer = _answer("steps: " + kind * depth + "1" + close * depth + "\n")
    assert isinstance(answer, RunvoyError)
    assert "levels deep" in answer.message or "not valid YAML" in answer.message, answer.message


def test_an_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    answer = _answer("\n".join(lines) + "\nsteps: [{run: 'true'}]\n")
    assert isinstance(answer, RunvoyError) and "100000 values" in answer.message
