"""Every config key, from generated TOML and RUNVOY_* variables, through `runvoy config validate` and through
loading at use: a clean answer every time, and the same answer in both places (decision 0916).

The keys are read from the models themselves (Settings, NotifyConfig and every installed provider's config
model), so a new key is driven as soon as it exists.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_cli.main import cli
from runvoy_core.config import NotifyConfig, ServeConfig, Settings
from runvoy_core.images.config import ImagesConfig
from runvoy_core.plugins.manager import get_plugins

# -- a small TOML writer: every value runvoy could be handed, including what JSON cannot say (nan, inf) ------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string; a lone surrogate makes the file invalid TOML
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["", "nan", "inf", "-1", "0", "1e400", "١", "５s", "99999999999999999d", "30s", "1h"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), SCALARS, max_size=3),
)

# values inside the documented forms of the top-level keys, small enough to run with
INSIDE: dict[str, st.SearchStrategy[Any]] = {
    "provider": st.just("local"),
    "region": st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"),
    "user": st.from_regex(r"\A[a-z][a-z0-9_.-]{0,20}\Z"),
    "log_format": st.sampled_from(["console", "json"]),
    "log_level": st.sampled_from(["info", "warning", "error"]),
    "lock_lease": st.one_of(st.integers(1, 3600), st.sampled_from(["5s", "1m", "1h", "30"])),
    "poll_interval_max": st.one_of(st.floats(0.01, 1.0), st.sampled_from(["100ms", "1s", "0.5"])),
    "start_timeout": st.one_of(st.integers(1, 7 * 86400), st.sampled_from(["15m", "1h", "7d"])),
    # the default size of a run (runvoy init writes it): small enough for a local run of `true`
    "cpu": st.sampled_from(["0.25", "0.5", "1", "250m"]),
    "memory": st.one_of(st.integers(64, 2048), st.sampled_from(["512MiB", "1GiB", "1.5GiB"])),
}


def _field_names(model: Any) -> list[str]:
    """A runvoy Record's fields, or a provider's pydantic config model's."""
    if hasattr(model, "__struct_fields__"):
        return list(model.__struct_fields__)
    return list(model.model_fields)


# server: a command then goes through that server (tests/core/test_facade.py drives the key)
TOP_LEVEL = sorted(
    set(_field_names(Settings)) - {"providers", "notify", "images", "profile", "home", "server", "serve"}
)


def _provider_fields() -> list[tuple[str, str]]:
    fields = []
    for spec in get_plugins().registry.specs():
        model = spec.load_config_model()
        if model is not None:
            fields += [(f"providers.{spec.name}", name) for name in _field_names(model)]
    return fields


SECTION_FIELDS = (
    [("notify", name) for name in _field_names(NotifyConfig)]
    + [("images", name) for name in _field_names(ImagesConfig)]
    # `runvoy server`'s section (also tests/server/test_serve_config.py)
    + [("serve", name) for name in _field_names(ServeConfig)]
    + _provider_fields()
)


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="runvoy", env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"runvoy {args!r} raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return result.exit_code, result.stderr


PROPERTY = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def write_config() -> Callable[[str], None]:
    path = Path(os.environ["RUNVOY_CONFIG"])

    def write(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")

    return write


def test_every_top_level_key_has_a_generator_of_values_inside_its_form() -> None:
    assert set(TOP_LEVEL) <= set(INSIDE), set(TOP_LEVEL) - set(INSIDE)


@pytest.mark.parametrize("key", TOP_LEVEL)
@PROPERTY
@given(data=st.data())
def test_a_top_level_key_gets_the_same_answer_from_validate_and_at_use(
    key: str, data: st.DataObject, write_config: Callable[[str], None]
) -> None:
    inside = data.draw(st.booleans(), label="inside")
    value = data.draw(INSIDE[key] if inside else VALUES, label="value")
    write_config(f"{key} = {toml_value(value)}\n")
    code, err = _invoke("config", "validate")
    assert code in (0, 125), err
    if code == 125:
        assert key in err or "TOML" in err, err
        # the same rule at use: every command that loads the settings refuses it the same way
        at_use, err_at_use = _invoke("list")
        assert at_use == 125 and err_at_use.splitlines()[0] in (err.splitlines()[0], err_at_use), err_at_use
    else:
        assert not inside or code == 0
        # what validate accepts works: a locked run takes the lease, the poll interval and the start timeout
        at_use, err_at_use = _invoke("run", "--lock", "props", "true")
        assert at_use == 0, err_at_use


@pytest.mark.parametrize("key", TOP_LEVEL)
@settings(PROPERTY, max_examples=6)
@given(value=SCALARS)
def test_a_top_level_key_from_the_environment_is_checked_the_same_way(key: str, value: Any) -> None:
    text = value if isinstance(value, str) else toml_value(value)
    code, err = _invoke("config", "validate", env={f"RUNVOY_{key.upper()}": text})
    assert code in (0, 125), err
    if code == 125:
        assert f"RUNVOY_{key.upper()}" in err or key in err, err


@pytest.mark.parametrize(("section", "key"), SECTION_FIELDS)
@settings(PROPERTY, max_examples=6)
@given(value=VALUES)
def test_a_section_key_gets_a_clean_answer_from_validate(
    section: str, key: str, value: Any, write_config: Callable[[str], None]
) -> None:
    write_config(f"[{section}]\n{key} = {toml_value(value)}\n")
    code, err = _invoke("config", "validate")
    assert code in (0, 125), err
    if code == 125:
        assert key in err or "TOML" in err, err
    if section.startswith("providers.") and code == 0:
        # the provider builds its config with the same model at use
        spec = get_plugins().registry.get(section.split(".", 1)[1])
        assert spec is not None
        model = spec.load_config_model()
        assert model is not None
        model.model_validate({key: value})


@settings(PROPERTY, max_examples=10)
@given(depth=st.integers(33, 3000), kind=st.sampled_from(["array", "table", "dotted"]))
def test_deep_nesting_is_a_clean_error(depth: int, kind: str, write_config: Callable[[str], None]) -> None:
    if kind == "array":
        text = "x = " + "[" * depth + "]" * depth + "\n"
    elif kind == "table":
        text = "x = " + "{a = " * depth + "1" + "}" * depth + "\n"
    else:
        text = "[" + ".".join(["a"] * depth) + "]\n"
    write_config(text)
    code, err = _invoke("config", "validate")
    assert code == 125 and ("levels deep" in err or "TOML" in err), err
