"""Image references parse and normalise as Docker's do; everything else is a UsageError naming the problem."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.errors import InvalidImageReference, UsageError
from runvoy_core.images.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "canonical", "familiar"),
    [
        ("python", "docker.io/library/python:latest", "python:latest"),
        ("python:3.12-slim", "docker.io/library/python:3.12-slim", "python:3.12-slim"),
        ("myorg/app:1", "docker.io/myorg/app:1", "myorg/app:1"),
        ("docker.io/python", "docker.io/library/python:latest", "python:latest"),
        ("index.docker.io/library/python:3", "docker.io/library/python:3", "python:3"),
        ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/app:dev", "localhost:5000/app:dev", "localhost:5000/app:dev"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app:latest", "127.0.0.1:5000/team/app:latest"),
        ("ghcr.io/o/r/app:v1.2.3", "ghcr.io/o/r/app:v1.2.3", "ghcr.io/o/r/app:v1.2.3"),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1",
        ),
        (f"python@{DIGEST}", f"docker.io/library/python@{DIGEST}", f"python@{DIGEST}"),
        (f"python:3@{DIGEST}", f"docker.io/library/python:3@{DIGEST}", f"python:3@{DIGEST}"),
        ("Registry.Example/app", "Registry.Example/app:latest", "Registry.Example/app:latest"),
        ("a__b/c-d.e---f_g", "docker.io/a__b/c-d.e---f_g:latest", "a__b/c-d.e---f_g:latest"),
        ("localhost", "docker.io/library/localhost:latest", "localhost:latest"),
    ],
)
def test_references_normalise_as_docker_does(text: str, canonical: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert ref.canonical == canonical
    assert ref.familiar == familiar
    assert parse_reference(canonical) == ref


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("Python", "must be lower case"),
        ("myorg/App:1", "must be lower case"),
        ("python:3 ", "white space"),
        ("python:", "the tag ''"),
        ("python:-x", "the tag '-x'"),
        ("python:" + "t" * 129, "1-128 characters"),
        ("python@sha256:abc", "digest"),
        ("python@sha256:" + "AB" * 32, "digest"),
        ("python@md5:" + "ab" * 16, "digest"),
        ("ghcr.io/", "missing after the registry host"),
        ("a//b", "empty path component"),
        ("a/b/", "empty path component"),
        ("a_-b", "path component"),
        ("-a", "path component"),
        ("host:port/app", "registry host"),
        ("-bad.host/app", "registry host"),
        ("ab" * 32, "image id"),
        (":tag", "repository name is missing"),
        ("a" * 300, "longer than 255"),
        ("x" * 2000, "longer than 1024"),
    ],
)
def test_invalid_references_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidImageReference) as caught:
        parse_reference(text)
    assert problem in caught.value.message
    assert caught.value.exit_code == 125
    assert "REPOSITORY" in caught.value.hint


_ALPHABET = string.ascii_letters + string.digits + "._-/:@" + " \t" + "é"
_PIECES = st.sampled_from(
    [
        "docker.io/",
        "index.docker.io/",
        "localhost",
        ":5000",
        "/",
        ":",
        "@",
        "sha256:",
        "ab" * 32,
        "library/",
        "__",
        "-",
    ]
)
_REFERENCE_LIKE = st.lists(st.one_of(_PIECES, st.text(alphabet=_ALPHABET, max_size=12)), max_size=8).map(
    "".join
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_REFERENCE_LIKE, st.text(max_size=60)))
def test_any_string_parses_to_a_fixed_point_or_is_a_usage_error(text: str) -> None:
    try:
        ref = parse_reference(text)
    except UsageError:
        return
    again = parse_reference(ref.canonical)
    assert again == ref
    assert again.canonical == ref.canonical
    assert parse_reference(ref.familiar) == ref


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=20, max_value=1000))
def test_hostile_input_is_refused_in_linear_time(n: int) -> None:
    # a backtracking expression would take exponential time on these
    for text in ("a" * n + "!", "a-" * n + "!", "a." * n + "/!", "docker.io/" + "a_" * n + "-"):
        with pytest.raises(InvalidImageReference):
            parse_reference(text)
