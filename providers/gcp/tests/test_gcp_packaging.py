"""Without the Google libraries the provider fails with ProviderUnavailable and the install hint; the
config model validates and rejects values without them."""

from __future__ import annotations

import subprocess
import sys

import pytest

_WITHOUT_GOOGLE = r"""
import importlib.abc, sys

class NoGoogle(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "google" or name.startswith("google."):
            raise ImportError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoGoogle())
from runvoy_core.errors import ProviderUnavailable
from runvoy_core.plugins.manager import load_plugins
spec = load_plugins().registry.get("gcp")
config = spec.load_config_model().model_validate({"project": "p"})
try:
    spec.load_factory()
except ProviderUnavailable as exc:
    print("MESSAGE", exc.message)
    print("HINT", exc.hint)
"""


def test_missing_sdk_is_provider_unavailable_with_the_install_hint() -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_GOOGLE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HINT install it with: pip install 'runvoy[gcp]'" in done.stdout
    assert "MESSAGE" in done.stdout and "Traceback" not in done.stdout


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("job_prefix", "Runvoy"),
        ("bucket", "UPPER"),
        ("labels", {"managed-by": "me"}),
        ("labels", {"Team": "x"}),
        ("run_endpoint", "localhost:8080"),
        ("default_timeout", 169 * 3600),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    from pydantic import ValidationError
    from runvoy_gcp.config import GcpConfig

    with pytest.raises(ValidationError):
        GcpConfig.model_validate({field: value})


def test_config_defaults_and_normalisation() -> None:
    from runvoy_gcp.config import GcpConfig

    config = GcpConfig.model_validate({"bucket_prefix": "/a/b/", "run_endpoint": "http://127.0.0.1:9/"})
    assert config.bucket_prefix == "a/b/" and config.run_endpoint == "http://127.0.0.1:9"
    assert config.region == "us-central1" and config.default_timeout == 86400
