"""The ``[serve]`` section and the options of ``runvoy server`` / ``runvoy health``: every key inside its
documented form is accepted as the value it names, every value outside is refused naming the key — from the
file, from RUNVOY_SERVE__* and through `runvoy config validate` alike (docs/inputs.md, docs/configuration.md)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core import inputs
from runvoy_core.config import ServeConfig, Settings, load_settings
from runvoy_core.errors import ConfigError
from runvoy_core.records import RecordError

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTS = st.one_of(
    st.sampled_from(["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "fd00::1"]),
    st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,40}\Z"),
)
UNITS = {"": 1, "B": 1, "KiB": 1024, "K": 1024, "kb": 1024, "MiB": 1 << 20, "M": 1 << 20, "mb": 1 << 20}


@st.composite
def sizes(draw: st.DrawFn) -> tuple[str, int]:
    unit = draw(st.sampled_from(sorted(UNITS)))
    scale = UNITS[unit]
    number = draw(st.integers(-(-1024 // scale), (64 << 20) // scale))
    return f"{number}{unit}", number * scale


# key -> (values inside, the stored value expected for a value)
INSIDE: dict[str, st.SearchStrategy[Any]] = {
    "host": HOSTS,
    "port": st.integers(0, 65535),
    "rate": st.one_of(st.floats(0.01, 100_000.0), st.integers(1, 100_000)),
    "burst": st.integers(1, 1_000_000),
    "request_timeout": st.one_of(st.integers(1, 3600), st.sampled_from(["1s", "30s", "10m", "1h"])),
    "trusted_proxies": st.lists(
        st.one_of(st.ip_addresses().map(str), st.sampled_from(["10.0.0.0/8", "fd00::/8", "192.168.1.0/24"])),
        max_size=5,
    ),
    "require_totp_for_admin": st.booleans(),
}
OUTSIDE: dict[str, st.SearchStrategy[Any]] = {
    "host": st.sampled_from(["", " ", "a b", "-x", "::zz", "x" * 300, "a\x00b", "١٢٧.0.0.1", 5, True]),
    "port": st.one_of(
        st.integers(max_value=-1), st.integers(min_value=65536), st.sampled_from(["x", 1.5, True])
    ),
    "rate": st.one_of(
        st.floats(max_value=0.0099, allow_nan=False),
        st.floats(min_value=100_000.1, allow_infinity=False),
        st.sampled_from([math.nan, math.inf, -math.inf, "1e400", "fast", "", True, "٣"]),
    ),
    "burst": st.one_of(
        st.integers(max_value=0), st.integers(min_value=1_000_001), st.sampled_from([1.5, "many", True, "١"])
    ),
    "request_timeout": st.sampled_from([0, 0.5, "0s", "2h", 3601, "nan", math.inf, "soon", True]),
    "trusted_proxies": st.one_of(
        st.lists(st.sampled_from(["proxy", "10.0.0.0/33", "", "1.2.3"]), min_size=1, max_size=3),
        st.just(["10.0.0.1"] * 65),
        st.just("10.0.0.1"),
    ),
    # msgspec's booleans: true/false, and 1/0 or "true"/"1" as the environment gives them
    "require_totp_for_admin": st.sampled_from(["yes", 2, None, 1.5, "on", "enabled"]),
}


def test_every_key_has_generators() -> None:
    keys = set(ServeConfig.__struct_fields__)
    assert keys == set(INSIDE) | {"body_limit"} and keys == set(OUTSIDE) | {"body_limit"}


def test_zero_config_serves_on_the_laptop() -> None:
    serve = Settings().serve
    assert (serve.host, serve.port, serve.body_limit, serve.rate, serve.burst) == (
        "127.0.0.1",
        8421,
        1 << 20,
        20.0,
        40,
    )
    assert serve.request_timeout == 90.0 and serve.trusted_proxies == [] and not serve.require_totp_for_admin


@pytest.mark.parametrize("key", sorted(INSIDE))
@PROPERTY
@given(data=st.data())
def test_a_value_inside_is_accepted(key: str, data: st.DataObject) -> None:
    value = data.draw(INSIDE[key], label=key)
    serve = Settings.model_validate({"serve": {key: value}}).serve
    stored = getattr(serve, key)
    if key == "request_timeout":
        assert stored == inputs.REQUEST_TIMEOUT.parse(value)
    elif key == "rate":
        assert stored == pytest.approx(float(value))
    else:
        assert stored == value


@PROPERTY
@given(size=sizes())
def test_a_body_limit_inside_is_its_bytes(size: tuple[str, int]) -> None:
    text, expected = size
    assert Settings.model_validate({"serve": {"body_limit": text}}).serve.body_limit == expected


@PROPERTY
@given(
    value=st.one_of(
        st.integers(max_value=1023),
        st.integers(min_value=(64 << 20) + 1),
        st.sampled_from(["1GiB", "1e6", "lots", "", "-1KiB", "1.5MiB", True]),
    )
)
def test_a_body_limit_outside_is_refused(value: Any) -> None:
    with pytest.raises(RecordError) as refused:
        Settings.model_validate({"serve": {"body_limit": value}})
    assert "body_limit" in str(refused.value)


@pytest.mark.parametrize("key", sorted(OUTSIDE))
@PROPERTY
@given(data=st.data())
def test_a_value_outside_is_refused_naming_the_key(key: str, data: st.DataObject) -> None:
    value = data.draw(OUTSIDE[key], label=key)
    with pytest.raises(RecordError) as refused:
        Settings.model_validate({"serve": {key: value}})
    assert key in str(refused.value)


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return json.dumps(value)


@pytest.mark.parametrize("key", sorted(OUTSIDE))
@settings(PROPERTY, max_examples=8)
@given(data=st.data())
def test_the_file_and_the_environment_refuse_the_same_way(
    key: str, data: st.DataObject, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    value = data.draw(OUTSIDE[key].filter(lambda v: v is not None and "\x00" not in str(v)), label=key)
    folder = tmp_path_factory.mktemp("cfg")
    config = folder / "config.toml"
    config.write_text(f"[serve]\n{key} = {toml(value)}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as from_file:
        load_settings(config_path=config)
    assert key in from_file.value.message
    if isinstance(value, str) and value.strip() and not value.startswith(("[", "{")):
        monkeypatch.setenv(f"RUNVOY_SERVE__{key.upper()}", value)
        with pytest.raises(ConfigError) as from_env:
            load_settings(config_path=folder / "absent.toml")
        assert key in from_env.value.message
