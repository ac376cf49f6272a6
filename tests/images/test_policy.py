"""The [images] policy (pure) and its config model's bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.errors import ImagePolicyRefused, UsageError
from runvoy_core.images.config import ImagesConfig, RegistryConfig
from runvoy_core.images.policy import check_policy, evaluate
from runvoy_core.records import RecordError

DIGEST = "sha256:" + "cd" * 32
ECR = "123456789012.dkr.ecr.*.amazonaws.com/*"


def config(**values: object) -> ImagesConfig:
    return ImagesConfig.model_validate(values)


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("python:3.12", True),  # familiar spelling matches "python:3.*"
        ("docker.io/library/python:3.11-slim", True),
        ("python:2.7", False),
        ("python", False),  # python:latest
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1", True),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io/app:1", False),
        ("999999999999.dkr.ecr.eu-west-1.amazonaws.com/app:1", False),
        ("ghcr.io/someone/python:3.12", False),
    ],
)
def test_allow_rules_match_the_canonical_or_the_familiar_spelling(image: str, allowed: bool) -> None:
    decision = evaluate(image, config(allow=[ECR, "python:3.*"]))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule is None
        assert "matches no [images] allow rule" in decision.reason
        assert "'python:3.*'" in decision.reason


def test_an_empty_allow_list_allows_everything_not_blocked() -> None:
    assert evaluate("anything/at:all", config()).allowed


def test_block_wins_over_allow_and_the_refusal_names_the_rule() -> None:
    policy = config(allow=["*"], block=["*:latest", "docker.io/evil/*"])
    with pytest.raises(ImagePolicyRefused) as caught:
        check_policy("python", policy)
    assert "block rule '*:latest'" in caught.value.message
    assert caught.value.details["rule"] == "block = '*:latest'"
    assert caught.value.exit_code == 125
    assert isinstance(caught.value, UsageError)
    with pytest.raises(ImagePolicyRefused, match=r"docker\.io/evil/\*"):
        check_policy("evil/miner:1", policy)
    assert check_policy("python:3", policy).canonical == "docker.io/library/python:3"


def test_require_digest_refuses_a_tag_and_accepts_a_digest() -> None:
    policy = config(require_digest=True)
    with pytest.raises(ImagePolicyRefused) as caught:
        check_policy("python:3.12", policy)
    assert "require_digest = true" in caught.value.message
    assert "docker.io/library/python@sha256:" in caught.value.hint
    assert evaluate(f"python:3.12@{DIGEST}", policy).allowed
    assert evaluate(f"python@{DIGEST}", policy).allowed


def test_a_digest_reference_is_matched_with_its_digest() -> None:
    policy = config(allow=["python:3.*"])
    assert evaluate(f"python:3.12@{DIGEST}", policy).allowed
    assert not evaluate(f"python@{DIGEST}", policy).allowed  # no tag to match 3.*
    assert evaluate(f"python@{DIGEST}", config(allow=["python@sha256:*"])).allowed


def test_block_is_checked_before_require_digest_and_allow_names_its_rule() -> None:
    policy = config(allow=["python:*"], block=["python:2*"], require_digest=True)
    assert evaluate(f"python:2.7@{DIGEST}", policy).rule == "block = 'python:2*'"
    assert evaluate("python:3", policy).rule == "require_digest = true"
    assert evaluate(f"python:3@{DIGEST}", policy).rule == "allow = 'python:*'"


def test_the_config_documents_and_enforces_its_registries() -> None:
    images = config(
        registries={
            "index.docker.io": {"username_env": "HUB_USER", "password_env": "HUB_TOKEN"},
            "localhost:5000": {"plain_http": True},
        }
    )
    assert images.registry("docker.io").password_env == "HUB_TOKEN"
    assert images.registry("localhost:5000").plain_http
    assert images.registry("ghcr.io") == RegistryConfig()
    with pytest.raises(RecordError, match="go together"):
        RegistryConfig(username_env="U")
    with pytest.raises(RecordError, match="excludes"):
        RegistryConfig(username_env="U", password_env="P", token_env="T")
    with pytest.raises(RecordError, match="same registry"):
        config(registries={"docker.io": {}, "index.docker.io": {}})


_OUT_OF_BOUNDS = st.one_of(
    st.fixed_dictionaries(
        {"cache_ttl": st.one_of(st.floats(max_value=-0.001), st.floats(min_value=3600.001))}
    ),
    st.fixed_dictionaries({"timeout": st.one_of(st.floats(max_value=0), st.floats(min_value=120.001))}),
    st.fixed_dictionaries(
        {"allow": st.lists(st.text(alphabet=" \t\n\"'$;,{}()<>|&", min_size=1), min_size=1)}
    ),
    st.fixed_dictionaries({"block": st.just([""])}),
    st.fixed_dictionaries({"block": st.lists(st.just("x"), min_size=257, max_size=260)}),
    st.fixed_dictionaries({"allow": st.just(["a" * 513])}),
    st.fixed_dictionaries({"require_digest": st.sampled_from(["sometimes", 2, None, [True]])}),
    st.fixed_dictionaries(
        {
            "registries": st.dictionaries(
                st.sampled_from(["bad host", "-x.io", "a:b:c", "x.io/p"]), st.just({}), min_size=1
            )
        }
    ),
    st.fixed_dictionaries(
        {"registries": st.just({"ghcr.io": {"password_env": "1NOT_A_NAME", "username_env": "U"}})}
    ),
    st.fixed_dictionaries({"registries": st.just({"ghcr.io": {"password": "inline-secret"}})}),
    st.dictionaries(st.sampled_from(["alow", "blocks", "ttl", "digest"]), st.just(1), min_size=1),
)


@settings(max_examples=200, deadline=None)
@given(_OUT_OF_BOUNDS)
def test_values_outside_the_documented_form_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(RecordError):
        ImagesConfig.model_validate(values)


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "cache_ttl": st.floats(min_value=0, max_value=3600),
            "timeout": st.floats(min_value=0.001, max_value=120),
            "allow": st.lists(st.from_regex(r"[a-z0-9.*?/:-]{1,40}", fullmatch=True), max_size=5),
            "require_digest": st.booleans(),
        }
    )
)
def test_values_inside_the_documented_form_are_accepted(values: dict[str, object]) -> None:
    assert ImagesConfig.model_validate(values).cache_ttl == values["cache_ttl"]
