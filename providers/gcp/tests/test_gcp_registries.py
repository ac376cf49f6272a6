"""Private registries on Cloud Run jobs (decision 0812): Artifact Registry through the job's service account,
other registries through a mapped Artifact Registry remote repository, a clear refusal for what Cloud Run
cannot pull; registry_login with the provider's own OAuth token; the config key's form."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from runvoy_gcp.config import GcpConfig
from runvoy_gcp.provider import create_provider

from runvoy_core.config import Settings
from runvoy_core.errors import ValidationFailed
from runvoy_core.models import ExecutionRequest
from runvoy_core.ports import TaskSpec
from runvoy_core.ports.optional import RegistryLogin

SERVICE_ACCOUNT = "runner@p-test.iam.gserviceaccount.com"
REMOTE = "us-docker.pkg.dev/acme-prod/ghcr-remote"


def created_job(fake_run: Any, provider: Any, spec: TaskSpec) -> dict[str, Any]:
    location = provider.compute.location(None)
    name = provider.compute.ensure_job(location, provider.compute.job_content(spec))
    job: dict[str, Any] = fake_run.jobs[name]
    return job


def test_an_artifact_registry_image_runs_as_the_configured_service_account(gcp_config, fake_run) -> None:
    config = gcp_config.model_copy(update={"service_account": SERVICE_ACCOUNT})
    provider = create_provider(config, None)
    try:
        image = "us-central1-docker.pkg.dev/acme-prod/apps/tool:1"
        job = created_job(
            fake_run, provider, TaskSpec(execution_id="gar000000001", argv=["true"], image=image)
        )
    finally:
        provider.close()
    template = job["template"]["template"]
    assert template["serviceAccount"] == SERVICE_ACCOUNT
    assert template["containers"][0]["image"] == image


def test_a_mapped_registry_runs_through_its_remote_repository(gcp_config, fake_run) -> None:
    config = gcp_config.model_copy(
        update={"registry_remotes": {"ghcr.io": REMOTE, "docker.io": REMOTE + "-hub"}}
    )
    provider = create_provider(config, None)
    digest = "sha256:" + "ab" * 32
    try:
        ghcr = created_job(
            fake_run,
            provider,
            TaskSpec(execution_id="gar000000002", argv=["true"], image="ghcr.io/acme/tool:1.2"),
        )
        pinned = created_job(
            fake_run, provider, TaskSpec(execution_id="gar000000003", argv=["true"], image=f"python@{digest}")
        )
    finally:
        provider.close()
    assert ghcr["template"]["template"]["containers"][0]["image"] == f"{REMOTE}/acme/tool:1.2"
    assert pinned["template"]["template"]["containers"][0]["image"] == f"{REMOTE}-hub/library/python@{digest}"


def test_a_registry_cloud_run_cannot_pull_from_is_refused_before_anything_starts(provider, fake_run) -> None:
    with pytest.raises(ValidationFailed) as caught:
        provider.compute.validate(ExecutionRequest(command="true", image="registry.acme.internal:5000/app:1"))
    assert "registry.acme.internal:5000" in caught.value.message
    assert "registry_remotes" in (caught.value.hint or "") and "remote-repository" in (
        caught.value.hint or ""
    )
    with pytest.raises(ValidationFailed):
        provider.compute.start(
            TaskSpec(execution_id="gar000000004", argv=["true"], image="quay.io/acme/app:1"), "gar000000004"
        )
    assert not [name for name in fake_run.jobs if name.startswith(provider.compute.location(None))]


def test_a_private_ghcr_registry_without_a_remote_is_refused(gcp_config, fake_run) -> None:
    """GHCR's public images pull directly; one the image check logs in to is private: Cloud Run can't."""
    images = {"registries": {"ghcr.io": {"username_env": "GHCR_USER", "password_env": "GHCR_TOKEN"}}}
    provider = create_provider(gcp_config, Settings(images=images))
    try:
        provider.compute.validate(ExecutionRequest(command="true", image="python:3.12-slim"))
        with pytest.raises(ValidationFailed, match=r"private registry ghcr\.io") as caught:
            provider.compute.validate(ExecutionRequest(command="true", image="ghcr.io/acme/secret-tool:1"))
        assert "registry_remotes" in (caught.value.hint or "")
    finally:
        provider.close()
    public = create_provider(gcp_config, None)
    try:
        public.compute.validate(ExecutionRequest(command="true", image="ghcr.io/acme/open-tool:1"))
    finally:
        public.close()


# -- registry_login: the provider's own OAuth token, from a real google-auth refresh ---------------------

TOKEN = "ya29.not-a-real-access-token-0123456789"


class _TokenHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def oauth_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Application Default Credentials of a service account whose token endpoint is a local server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "adc.json"
    # a service account key: google-auth signs a JWT and trades it at token_uri for an access token
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-prod",
                "private_key_id": "0" * 40,
                "private_key": pem,
                "client_email": SERVICE_ACCOUNT,
                "client_id": "1" * 21,
                "token_uri": f"http://127.0.0.1:{server.server_address[1]}/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    yield
    server.shutdown()
    server.server_close()


def test_registry_login_hands_out_an_access_token_and_never_logs_it(
    gcp_config, oauth_credentials: None, caplog: pytest.LogCaptureFixture
) -> None:
    provider = create_provider(gcp_config.model_copy(update={"anonymous_credentials": False}), None)
    assert isinstance(provider, RegistryLogin)
    caplog.set_level(logging.DEBUG, logger="runvoy")
    try:
        with structlog.testing.capture_logs() as logged:
            assert provider.registry_login("europe-west1-docker.pkg.dev") == ("oauth2accesstoken", TOKEN)
            assert provider.registry_login("gcr.io") == ("oauth2accesstoken", TOKEN)
            assert provider.registry_login("eu.gcr.io") == ("oauth2accesstoken", TOKEN)
            assert provider.registry_login("ghcr.io") is None
            assert provider.registry_login("docker.io") is None
    finally:
        provider.close()
    assert TOKEN not in repr(logged) + caplog.text


def test_registry_login_with_anonymous_credentials_has_nothing(provider) -> None:
    assert provider.registry_login("us-docker.pkg.dev") is None


def toml_string(text: str) -> str:
    # a TOML basic string: JSON's \\uD800 surrogate pairs are not TOML
    return json.dumps(text, ensure_ascii=False)


# -- the config key ----------------------------------------------------------------------------------------

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
HOSTS = st.one_of(
    st.sampled_from(["docker.io", "ghcr.io", "quay.io", "registry.example.com:5000"]),
    st.builds(lambda a, b: f"{a}.{b}", LABEL, LABEL.filter(lambda s: s != "pkg")),
).filter(lambda h: not h.endswith((".pkg.dev", "gcr.io")))
REPOSITORIES = st.builds(
    lambda loc, project, repo: f"{loc}-docker.pkg.dev/{project}/{repo}",
    st.sampled_from(["us", "europe", "us-central1", "asia-east1"]),
    st.from_regex(r"\A[a-z][a-z0-9-]{4,20}[a-z0-9]\Z"),
    st.from_regex(r"\A[a-z]([a-z0-9-]{0,20}[a-z0-9])?\Z"),
)
BAD_HOSTS = st.one_of(
    st.sampled_from(["", "-x.io", "a..b", "ghcr.io/", "host:port", "a_b.io", "us-docker.pkg.dev", "gcr.io"]),
    st.text(min_size=256, max_size=300, alphabet="a"),
)
BAD_REPOSITORIES = st.one_of(
    st.sampled_from(
        [
            "",
            "ghcr.io/acme",
            "us-docker.pkg.dev/acme-prod",
            "us-docker.pkg.dev/Acme-Prod/repo",
            "us-docker.pkg.dev/acme-prod/repo/extra",
            "https://us-docker.pkg.dev/acme-prod/repo",
            "us-docker.pkg.dev/p/repo",
        ]
    ),
    st.text(max_size=40).filter(lambda s: "docker.pkg.dev" not in s),
)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)


@PROPERTY
@given(st.dictionaries(HOSTS, REPOSITORIES, max_size=5))
def test_registry_remotes_inside_the_form_are_accepted(value: dict[str, str]) -> None:
    assert GcpConfig.model_validate({"registry_remotes": value}).registry_remotes == value


@PROPERTY
@given(host=BAD_HOSTS, repository=REPOSITORIES)
def test_a_registry_that_is_not_a_host_or_is_google_s_own_is_refused(host: str, repository: str) -> None:
    with pytest.raises(ValidationError, match="registry_remotes"):
        GcpConfig.model_validate({"registry_remotes": {host: repository}})


@PROPERTY
@given(host=HOSTS, repository=BAD_REPOSITORIES)
def test_a_value_that_is_not_an_artifact_registry_repository_is_refused(host: str, repository: str) -> None:
    with pytest.raises(ValidationError, match="registry_remotes"):
        GcpConfig.model_validate({"registry_remotes": {host: repository}})


def test_more_than_64_remotes_are_refused() -> None:
    with pytest.raises(ValidationError, match="at most 64"):
        GcpConfig.model_validate(
            {"registry_remotes": {f"r{i}.io": "us-docker.pkg.dev/acme-prod/r" for i in range(65)}}
        )


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(host=st.one_of(HOSTS, BAD_HOSTS), repository=st.one_of(REPOSITORIES, BAD_REPOSITORIES))
def test_config_validate_answers_cleanly_for_registry_remotes(
    host: str, repository: str, runvoy_home: Path
) -> None:
    from runvoy_cli.main import cli

    Path(os.environ["RUNVOY_CONFIG"]).write_text(
        f"[providers.gcp]\nregistry_remotes = {{ {toml_string(host)} = {toml_string(repository)} }}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["config", "validate"], prog_name="runvoy", catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    try:
        GcpConfig.model_validate({"registry_remotes": {host: repository}})
        expected = 0
    except ValidationError:
        expected = 125
    assert result.exit_code == expected, result.stderr
    if expected:
        assert (
            "registry_remotes" in result.stderr or "TOML" in result.stderr
        ) and "Traceback" not in result.stderr


def test_the_default_image_is_the_configured_one(provider) -> None:
    """`DefaultImage`: the core checks and pins what a run without --image runs (issue 20)."""
    from runvoy_core.ports.optional import DefaultImage

    assert isinstance(provider, DefaultImage)
    assert provider.default_image() == provider.config.image
