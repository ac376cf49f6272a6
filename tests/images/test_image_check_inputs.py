"""The inputs that turn the image check off, inside and outside their documented form (docs/inputs.md, "switch"):
``image_check`` of the Python API and of a playbook (``--no-image-check`` is a flag: click takes no value)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core import Runvoy, inputs
from runvoy_core.errors import RunvoyError, ValidationFailed
from runvoy_core.playbook import parse_playbook

NOT_BOOLEANS = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.none(),
    st.sampled_from(["false", "no", "0", "off", "", "true"]),
    st.lists(st.booleans(), max_size=2),
)
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(value=NOT_BOOLEANS)
def test_the_switch_form_takes_booleans_only(value: Any) -> None:
    with pytest.raises(ValueError, match="is not true or false"):
        inputs.SWITCH.parse(value)


@PROPERTY
@given(value=NOT_BOOLEANS.filter(lambda v: v is not None))
def test_the_api_refuses_an_image_check_that_is_not_a_boolean_before_anything(value: Any) -> None:
    rv = Runvoy()
    with pytest.raises(ValidationFailed, match="image_check"):
        rv.submit("true", image="python:3.12", image_check=value)
    assert rv.list(refresh=False) == []


@pytest.mark.parametrize("value", [True, False])
def test_the_api_takes_a_boolean_image_check(value: bool) -> None:
    execution = Runvoy().run("true", image_check=value)  # no image: the check has nothing to do
    assert execution.status.value == "SUCCEEDED"


@PROPERTY
@given(value=st.one_of(NOT_BOOLEANS, st.booleans()))
def test_a_playbook_image_check_is_a_boolean_or_refused_by_name(value: Any) -> None:
    text = yaml.safe_dump({"image": "python:3.12", "image_check": value, "steps": [{"run": "true"}]})
    try:
        book = parse_playbook(text, source="p.yaml")
    except RunvoyError as exc:
        assert not isinstance(value, bool)
        assert exc.exit_code == 125 and "image_check" in exc.message, exc.message
        return
    assert isinstance(value, bool) or value is None
    assert book.request_options().get("image_check") == value
    assert book.to_request().image == "python:3.12"  # how to check is not part of the request
