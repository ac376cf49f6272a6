"""Where Application Default Credentials would come from, for ``runvoy init`` (decision 2111).

The places google-auth's ``google.auth.default()`` looks, in its order, read as files and variables: the
key file named by GOOGLE_APPLICATION_CREDENTIALS, then gcloud's ADC file (``gcloud auth application-default
login``), then the metadata server of a Google runtime. ``google.auth.default()`` itself is not called: with
no credentials it probes the metadata server over the network, which takes seconds off Google Cloud. The
project and region come from the same places and from gcloud's active configuration.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import Any

from runvoy_core.ports.optional import CredentialReport

HOW_TO = (
    "run `gcloud auth application-default login`, or point GOOGLE_APPLICATION_CREDENTIALS at a service "
    "account key file"
)
GOOGLE_RUNTIME_VARIABLES = ("K_SERVICE", "CLOUD_RUN_JOB", "GAE_APPLICATION", "FUNCTION_TARGET")


def gcloud_directory() -> Path:
    explicit = os.environ.get("CLOUDSDK_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", "~")).expanduser() / "gcloud"
    return Path("~/.config/gcloud").expanduser()


def _json_file(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{path} cannot be read as a credentials file: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return None, f"{path} is not a credentials file (it has no 'type')"
    return data, None


def _gcloud_properties(directory: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    try:
        active = (directory / "active_config").read_text(encoding="utf-8").strip() or "default"
    except (OSError, UnicodeDecodeError):
        active = "default"
    try:
        parser.read(directory / "configurations" / f"config_{active}", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        pass
    return parser


class GcpCredentialCheck:
    region_setting = "region"

    def check(self, section: dict[str, Any]) -> CredentialReport:
        found: list[str] = []
        missing: list[str] = []
        project: str | None = None
        if section.get("anonymous_credentials") in (True, "true"):
            found.append("anonymous_credentials = true (emulators only: nothing is sent)")
        explicit = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        directory = gcloud_directory()
        if not found and explicit:
            data, problem = _json_file(Path(explicit).expanduser())
            if data is not None:
                found.append(f"GOOGLE_APPLICATION_CREDENTIALS: {explicit} ({data['type']})")
                project = data.get("project_id") or data.get("quota_project_id")
            else:
                missing.append(
                    (problem or f"GOOGLE_APPLICATION_CREDENTIALS names {explicit}, which does not exist")
                    + f"; fix the variable, or unset it and {HOW_TO}"
                )
        elif not found:
            adc = directory / "application_default_credentials.json"
            data, problem = _json_file(adc)
            if data is not None:
                found.append(f"Application Default Credentials {adc} ({data['type']})")
                project = data.get("quota_project_id")
            elif problem:
                missing.append(f"{problem}; {HOW_TO}")
            elif any(os.environ.get(name) for name in GOOGLE_RUNTIME_VARIABLES):
                found.append("the metadata server of this Google Cloud runtime")
            else:
                missing.append(
                    f"no Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS is unset and there is "
                    f"no {adc}; {HOW_TO}"
                )
        properties = _gcloud_properties(directory)
        project = (
            os.environ.get("GOOGLE_CLOUD_PROJECT")
            or os.environ.get("CLOUDSDK_CORE_PROJECT")
            or properties.get("core", "project", fallback=None)
            or project
        )
        region = (
            os.environ.get("CLOUDSDK_RUN_REGION")
            or properties.get("run", "region", fallback=None)
            or properties.get("compute", "region", fallback=None)
        )
        settings: dict[str, str] = {}
        if section.get("project"):
            pass
        elif project:
            settings["project"] = str(project)
        elif found:
            missing.append(
                "no project: the credentials name none and gcloud has none set; run "
                "`gcloud config set project PROJECT_ID` or pass --set project=PROJECT_ID"
            )
        return CredentialReport(found=tuple(found), missing=tuple(missing), region=region, settings=settings)


CHECK = GcpCredentialCheck()
