"""The example Dockerfiles keep what runvoy needs: a /bin/sh and nothing wrapping the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "images"


def _instructions(path: Path) -> list[tuple[str, str]]:
    joined = path.read_text().replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


@pytest.mark.parametrize("example", ["python-uv", "node", "data-job"])
def test_an_example_image_runs_commands_through_bin_sh(example: str) -> None:
    dockerfile = EXAMPLES / example / "Dockerfile"
    assert dockerfile.read_text().startswith("# syntax=docker/dockerfile:1\n")  # a parser directive is first
    instructions = _instructions(dockerfile)
    bases = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert bases and not any(b.startswith(("scratch", "gcr.io/distroless")) for b in bases), bases
    entrypoints = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    assert entrypoints in ([], ["[]"]), "an entrypoint would wrap runvoy's /bin/sh -c"
    assert instructions[-1] == ("CMD", '["/bin/sh"]')
    assert any(keyword == "USER" for keyword, _ in instructions), "run as a non-root user"
