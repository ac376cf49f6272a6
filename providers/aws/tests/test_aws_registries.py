"""Private registries on Fargate (decision 0811): repositoryCredentials from Secrets Manager for registries
other than ECR, the execution role's access to them, and ECR logins for the image check."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import structlog
from aws_test_tools import inject_error, wait_ended
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from runvoy_aws.config import AwsConfig
from runvoy_aws.provider import create_provider
from runvoy_aws.taskdefs import TaskDefContent

from runvoy_core.errors import RunvoyError, UsageError
from runvoy_core.ports import TaskSpec
from runvoy_core.ports.optional import RegistryLogin

LOGIN = json.dumps({"username": "octocat", "password": "ghp_not-a-real-token-0123456789"})


def start(provider, execution_id: str, image: str):
    spec = TaskSpec(execution_id=execution_id, argv=["true"], image=image)
    ref = provider.compute.start(spec, execution_id)
    wait_ended(provider, ref)
    ecs = provider.clients.client("ecs")
    task = ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]
    return ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]


@pytest.fixture
def ghcr_provider(aws_config, moto):
    """A set-up provider whose config maps ghcr.io to the Secrets Manager secret ``ghcr-login``."""
    config = aws_config.model_copy(update={"registry_credentials": {"ghcr.io": "ghcr-login"}})
    made = create_provider(config, None)
    made.compute.start_retry_delay = 0.01
    arn = made.clients.client("secretsmanager").create_secret(Name="ghcr-login", SecretString=LOGIN)["ARN"]
    made.setup(dry_run=False)
    made.secret_arn = arn  # type: ignore[attr-defined]
    yield made
    made.close()


def test_a_ghcr_image_pulls_with_the_configured_secret_and_a_public_one_without(ghcr_provider, sim) -> None:
    private = start(ghcr_provider, "reg000000001", "ghcr.io/acme/tool:1.2")
    container = private["containerDefinitions"][0]
    assert container["image"] == "ghcr.io/acme/tool:1.2"
    assert container["repositoryCredentials"] == {"credentialsParameter": ghcr_provider.secret_arn}
    assert "octocat" not in json.dumps(private, default=str) and "ghp_" not in json.dumps(
        private, default=str
    )

    public = start(ghcr_provider, "reg000000002", "python:3.12-slim")
    assert "repositoryCredentials" not in public["containerDefinitions"][0]
    assert public["family"] != private["family"]


def test_a_changed_secret_registers_a_new_task_definition(ghcr_provider, sim, aws_config) -> None:
    first = start(ghcr_provider, "reg000000003", "ghcr.io/acme/tool:1")
    sm = ghcr_provider.clients.client("secretsmanager")
    other = sm.create_secret(Name="ghcr-login-2", SecretString=LOGIN)["ARN"]
    config = aws_config.model_copy(update={"registry_credentials": {"ghcr.io": other}})
    moved = create_provider(config, None)
    try:
        second = start(moved, "reg000000004", "ghcr.io/acme/tool:1")
    finally:
        moved.close()
    assert first["family"] != second["family"]
    assert second["containerDefinitions"][0]["repositoryCredentials"] == {"credentialsParameter": other}


def test_content_without_credentials_keeps_its_family() -> None:
    """Task definitions registered before 0811 are found again: an unset field is not hashed."""
    content = TaskDefContent(
        image="python:3.12-slim",
        architecture="X86_64",
        container_name="main",
        log_group="/runvoy/tasks",
        log_region="us-east-1",
        log_stream_prefix="runvoy",
        stop_timeout=30,
    )
    assert content.family == "runvoy-ab59285930c042bfb3fe"
    with_secret = content.model_copy(update={"repository_credentials": "arn:aws:secretsmanager:x"})
    assert with_secret.family != content.family


def test_a_missing_secret_is_a_usage_error_before_any_task(aws_config, moto, sim) -> None:
    config = aws_config.model_copy(update={"registry_credentials": {"docker.io": "dockerhub-login"}})
    provider = create_provider(config, None)
    try:
        provider.setup(dry_run=False)
        with pytest.raises(UsageError, match="dockerhub-login") as caught:
            provider.compute.start(
                TaskSpec(execution_id="reg000000005", argv=["true"], image="acme/app:1"), "k"
            )
        assert "create-secret" in (caught.value.hint or "")
    finally:
        provider.close()
    assert sim.launched == []


def test_setup_says_the_execution_role_may_read_the_secret(ghcr_provider) -> None:
    steps = {s["resource"]: s for s in ghcr_provider.setup(dry_run=True)}
    step = steps["registry credentials"]
    assert step["action"] == "exists", step
    assert ghcr_provider.secret_arn in step["detail"]


def test_setup_names_the_permission_a_narrower_role_lacks(aws_config, moto) -> None:
    iam = create_provider(aws_config, None).clients.client("iam")
    iam.create_role(RoleName="narrow", AssumeRolePolicyDocument="{}")
    iam.put_role_policy(
        RoleName="narrow",
        PolicyName="only-other",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-*",
                    }
                ],
            }
        ),
    )
    config = aws_config.model_copy(
        update={
            "registry_credentials": {"ghcr.io": "ghcr-login"},
            "execution_role_arn": "arn:aws:iam::123456789012:role/narrow",
        }
    )
    provider = create_provider(config, None)
    try:
        arn = provider.clients.client("secretsmanager").create_secret(Name="ghcr-login", SecretString=LOGIN)[
            "ARN"
        ]
        step = {s["resource"]: s for s in provider.setup(dry_run=True)}["registry credentials"]
    finally:
        provider.close()
    assert step["action"] == "manual"
    assert f"secretsmanager:GetSecretValue on {arn}" in step["detail"] and "narrow" in step["detail"]


def test_setup_asks_for_kms_decrypt_when_a_customer_key_encrypts_the_secret(aws_config, moto) -> None:
    probe = create_provider(aws_config, None)
    key = probe.clients.client("kms").create_key()["KeyMetadata"]["Arn"]
    iam = probe.clients.client("iam")
    iam.create_role(RoleName="no-kms", AssumeRolePolicyDocument="{}")
    iam.put_role_policy(
        RoleName="no-kms",
        PolicyName="secrets-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "*"}],
            }
        ),
    )
    probe.clients.client("secretsmanager").create_secret(Name="hub-login", SecretString=LOGIN, KmsKeyId=key)
    probe.close()
    config = aws_config.model_copy(
        update={
            "registry_credentials": {"docker.io": "hub-login"},
            "execution_role_arn": "arn:aws:iam::123456789012:role/no-kms",
        }
    )
    provider = create_provider(config, None)
    try:
        step = {s["resource"]: s for s in provider.setup(dry_run=True)}["registry credentials"]
    finally:
        provider.close()
    assert step["action"] == "manual", step
    assert f"kms:Decrypt on {key}" in step["detail"] and "GetSecretValue" not in step["detail"]


def test_registry_login_returns_ecr_credentials_and_never_logs_the_token(
    aws_config, moto, caplog: pytest.LogCaptureFixture
) -> None:
    provider = create_provider(aws_config, None)
    try:
        assert isinstance(provider, RegistryLogin)
        caplog.set_level(logging.DEBUG, logger="runvoy")
        with structlog.testing.capture_logs() as logged:
            same = provider.registry_login("123456789012.dkr.ecr.us-east-1.amazonaws.com")
            # another account's registry in another region: registryIds names that account
            other = provider.registry_login("210987654321.dkr.ecr.eu-west-1.amazonaws.com")
            assert provider.registry_login("ghcr.io") is None
            assert provider.registry_login("public.ecr.aws") is None
    finally:
        provider.close()
    assert same == ("AWS", "123456789012-auth-token")
    assert other == ("AWS", "210987654321-auth-token")
    text = repr(logged) + caplog.text
    assert "auth-token" not in text


def test_an_ecr_token_is_reused_until_shortly_before_it_expires(aws_config, moto) -> None:
    from runvoy_aws.registries import EcrLogin

    provider = create_provider(aws_config, None)
    calls: list[str] = []
    try:
        ecr = provider.clients.client("ecr")
        ecr.meta.events.register("before-send.ecr.GetAuthorizationToken", lambda **_: calls.append("x"))
        login = EcrLogin(provider.clients)
        registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        # moto's tokens expire on 2015-01-01: the clock is set before that
        valid_until = 1420070400.0
        first = login.login(registry, now=valid_until - 3600)
        again = login.login(registry, now=valid_until - 120)
        late = login.login(registry, now=valid_until - 30)  # inside the 60 s margin: asked again
    finally:
        provider.close()
    assert first == again == late == ("AWS", "123456789012-auth-token")
    assert len(calls) == 2


def test_an_ecr_login_failure_names_the_action_not_a_token(aws_config, moto) -> None:
    provider = create_provider(aws_config, None)
    try:
        inject_error(
            provider.clients.client("ecr"),
            "GetAuthorizationToken",
            1,
            code="AccessDeniedException",
            message="not authorized to perform: ecr:GetAuthorizationToken",
        )
        with pytest.raises(RunvoyError) as caught:
            provider.registry_login("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    finally:
        provider.close()
    assert "ecr:GetAuthorizationToken" in str(caught.value)


def toml_string(text: str) -> str:
    # a TOML basic string: JSON's \\uD800 surrogate pairs are not TOML
    return json.dumps(text, ensure_ascii=False)


# -- the config key ----------------------------------------------------------------------------------------

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
HOSTS = st.one_of(
    st.sampled_from(["docker.io", "ghcr.io", "quay.io", "registry.example.com:5000", "localhost:5000"]),
    st.builds(lambda a, b: f"{a}.{b}", LABEL, LABEL),
)
SECRETS = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9/_+=.@-]{1,40}\Z"),
    st.from_regex(r"\A[a-z0-9-]{1,20}\Z").map(
        lambda n: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{n}-AbCdEf"
    ),
)
BAD_HOSTS = st.one_of(
    st.sampled_from(
        ["", "-x.io", "a..b", "ghcr.io/", "host:port", "a_b.io", "123456789012.dkr.ecr.x.amazonaws.com"]
    ),
    st.text(min_size=256, max_size=300, alphabet="a"),
)
BAD_SECRETS = st.one_of(
    st.sampled_from(["", "has space", "tab\tname", "a" * 513, "arn:aws:ssm:us-east-1:1:parameter/x"]),
    st.text(min_size=1, max_size=20).filter(lambda s: any(c not in "/_+=.@-" and not c.isalnum() for c in s)),
)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)


@PROPERTY
@given(st.dictionaries(HOSTS, SECRETS, max_size=6))
def test_registry_credentials_inside_the_form_are_accepted(value: dict[str, str]) -> None:
    assert AwsConfig.model_validate({"registry_credentials": value}).registry_credentials == value


@PROPERTY
@given(host=BAD_HOSTS, secret=SECRETS)
def test_a_registry_that_is_not_a_host_is_refused(host: str, secret: str) -> None:
    with pytest.raises(ValidationError, match="registry_credentials"):
        AwsConfig.model_validate({"registry_credentials": {host: secret}})


@PROPERTY
@given(host=HOSTS, secret=BAD_SECRETS)
def test_a_value_that_is_not_a_secret_name_or_arn_is_refused(host: str, secret: str) -> None:
    with pytest.raises(ValidationError, match="registry_credentials"):
        AwsConfig.model_validate({"registry_credentials": {host: secret}})


def test_more_than_64_registries_are_refused() -> None:
    with pytest.raises(ValidationError, match="at most 64"):
        AwsConfig.model_validate({"registry_credentials": {f"r{i}.io": "s" for i in range(65)}})


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(host=st.one_of(HOSTS, BAD_HOSTS), secret=st.one_of(SECRETS, BAD_SECRETS))
def test_config_validate_answers_cleanly_for_registry_credentials(
    host: str, secret: str, runvoy_home: Path
) -> None:
    from runvoy_cli.main import cli

    path = Path(__import__("os").environ["RUNVOY_CONFIG"])
    path.write_text(
        f"[providers.aws]\nregistry_credentials = {{ {toml_string(host)} = {toml_string(secret)} }}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["config", "validate"], prog_name="runvoy", catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    try:
        AwsConfig.model_validate({"registry_credentials": {host: secret}})
        expected = 0
    except ValidationError:
        expected = 125
    assert result.exit_code == expected, result.stderr
    if expected:
        assert (
            "registry_credentials" in result.stderr or "TOML" in result.stderr
        ) and "Traceback" not in result.stderr
