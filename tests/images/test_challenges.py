"""WWW-Authenticate challenges, as registries send them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.images.registry import parse_challenges


def _parsed(*values: str) -> list[tuple[str, dict[str, str]]]:
    return [(c.scheme, c.params) for c in parse_challenges(list(values))]


def test_docker_hub_style_bearer_challenge() -> None:
    value = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/python:pull"'
    )
    assert _parsed(value) == [
        (
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/python:pull",
            },
        )
    ]


def test_quoted_commas_escapes_unquoted_values_and_two_challenges() -> None:
    value = 'Bearer realm="https://a/t?x=1,2", scope="repository:a:pull,push", error=insufficient_scope, Basic realm="r \\"q\\""'
    assert _parsed(value) == [
        (
            "bearer",
            {"realm": "https://a/t?x=1,2", "scope": "repository:a:pull,push", "error": "insufficient_scope"},
        ),
        ("basic", {"realm": 'r "q"'}),
    ]
    assert _parsed('Basic realm="registry"', "Bearer realm=x") == [
        ("basic", {"realm": "registry"}),
        ("bearer", {"realm": "x"}),
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet='Bb ear=",\\xrs', max_size=40), max_size=3))
def test_any_header_value_parses_without_error(values: list[str]) -> None:
    for challenge in parse_challenges(values):
        assert challenge.scheme
