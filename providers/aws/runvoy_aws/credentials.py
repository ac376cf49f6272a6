"""Where the AWS credential chain finds credentials, for ``runvoy init`` (decision 2111).

botocore's own resolver does the looking (environment, shared credentials and config files, SSO, assumed
roles, credential_process, the container and the instance role), so the answer is the one every later
command gets; nothing is sent to AWS. botocore is imported inside ``check`` only: the plugin module and
``runvoy --help`` stay free of it.
"""

from __future__ import annotations

import os
from typing import Any

from runvoy_core.ports.optional import CredentialReport

HOW_TO = (
    "run `aws configure` (or `aws sso login --profile NAME`), or export AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY"
)


class AwsCredentialCheck:
    region_setting = "region"

    def check(self, section: dict[str, Any]) -> CredentialReport:
        import botocore.session
        from botocore.exceptions import BotoCoreError, ProfileNotFound

        profile = section.get("profile") or None
        try:
            session = botocore.session.Session(profile=profile)
            files = (
                os.path.expanduser(str(session.get_config_variable("credentials_file"))),
                os.path.expanduser(str(session.get_config_variable("config_file"))),
            )
            region = session.get_config_variable("region")
            name = session.profile or "default"
            credentials = session.get_credentials()
        except ProfileNotFound as exc:
            return CredentialReport(
                missing=(
                    f"{exc}; add it with `aws configure --profile {profile or exc.kwargs.get('profile')}`",
                )
            )
        except (
            BotoCoreError
        ) as exc:  # partial credentials, an unparsable config file, an expired SSO token...
            return CredentialReport(missing=(f"the AWS credential chain failed: {exc}",))
        notes = []
        if section.get("endpoint_url"):
            notes.append(f"endpoint {section['endpoint_url']} (an emulator: credentials of any value do)")
        if credentials is None:
            others = sorted(set(session.available_profiles) - {name})
            missing = [
                f"no AWS credentials for profile {name!r}: looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                f"{files[0]}, {files[1]} (keys, SSO, role, credential_process), the container and the "
                f"instance role; {HOW_TO}",
            ]
            if others:
                missing.append(
                    f"profiles in your AWS files: {', '.join(others)}: pick one with "
                    "`--set profile=NAME` or AWS_PROFILE"
                )
            return CredentialReport(found=tuple(notes), missing=tuple(missing), region=region)
        found = (_describe(credentials.method, name, files), *notes)
        return CredentialReport(found=found, region=region)


def _describe(method: str, profile: str, files: tuple[str, str]) -> str:
    if method == "env":
        names = [
            n for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if n in os.environ
        ]
        return f"environment variables {', '.join(names)}"
    described = {
        "shared-credentials-file": f"the shared credentials file {files[0]}, profile {profile!r}",
        "config-file": f"the AWS config file {files[1]}, profile {profile!r}",
        "sso": f"IAM Identity Center (SSO), profile {profile!r} (when its session expires: aws sso login)",
        "assume-role": f"a role assumed by profile {profile!r}",
        "assume-role-with-web-identity": "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
        "custom-process": f"the credential_process of profile {profile!r}",
        "container-role": "the ECS/EKS container role",
        "iam-role": "the EC2 instance role (instance metadata)",
    }
    return described.get(method, f"the AWS credential chain ({method})")


CHECK = AwsCredentialCheck()
