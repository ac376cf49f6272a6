"""What the fake ARM accepts in a container group PUT, after the ``ContainerGroup`` model of the
Microsoft.ContainerInstance 2023-05-01 API (the shape azure-mgmt-containerinstance 10.1 serializes).

``validate_group`` returns None or ``(code, message)`` in ARM's terms; the server answers 400 with
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import re
from typing import Any

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_CPU = 4.0
MAX_MEMORY_GB = 16.0

GROUP_KEYS = {"id", "name", "type", "location", "tags", "zones", "identity", "properties"}
GROUP_PROPERTIES = {
    "provisioningState",
    "containers",
    "imageRegistryCredentials",
    "restartPolicy",
    "ipAddress",
    "osType",
    "volumes",
    "instanceView",
    "diagnostics",
    "subnetIds",
    "dnsConfig",
    "sku",
    "encryptionProperties",
    "initContainers",
    "extensions",
    "confidentialComputeProperties",
    "priority",
}
CONTAINER_PROPERTIES = {
    "image",
    "command",
    "ports",
    "environmentVariables",
    "instanceView",
    "resources",
    "volumeMounts",
    "livenessProbe",
    "readinessProbe",
    "securityContext",
}
RESTART_POLICIES = {"Always", "OnFailure", "Never"}
OS_TYPES = {"Linux", "Windows"}
PRIORITIES = {"Regular", "Spot"}

Problem = tuple[str, str]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_name(name: str) -> Problem | None:
    if len(name) > 63 or not NAME.match(name):
        return (
            "InvalidContainerGroupName",
            f"The container group name '{name}' is invalid. The name must match '[a-z0-9]([-a-z0-9]*[a-z0-9])?' "
            "and be at most 63 characters long.",
        )
    return None


def _validate_container(index: int, container: Any) -> Problem | None:
    where = f"properties.containers[{index}]"
    if not isinstance(container, dict):
        return "InvalidRequestContent", f"{where} must be an object"
    name = container.get("name")
    if not isinstance(name, str) or not name:
        return "InvalidRequestContent", f"{where}.name is required"
    if len(name) > 63 or not NAME.match(name):
        return "InvalidContainerName", f"The container name '{name}' in container group is invalid."
    props = container.get("properties")
    if not isinstance(props, dict):
        return "InvalidRequestContent", f"{where}.properties is required"
    unknown = set(props) - CONTAINER_PROPERTIES
    if unknown:
        return "InvalidRequestContent", f"{where}.properties has unknown members: {sorted(unknown)}"
    if not isinstance(props.get("image"), str) or not props["image"]:
        return "InvalidContainerImage", f"{where}.properties.image is required"
    command = props.get("command")
    if command is not None and (
        not isinstance(command, list) or not all(isinstance(c, str) for c in command)
    ):
        return "InvalidRequestContent", f"{where}.properties.command must be a list of strings"
    resources = props.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("requests"), dict):
        return "InvalidRequestContent", f"{where}.properties.resources.requests is required"
    requests = resources["requests"]
    cpu, memory = requests.get("cpu"), requests.get("memoryInGB")
    if not _number(cpu) or not _number(memory):
        return (
            "InvalidRequestContent",
            f"{where}.properties.resources.requests needs numeric cpu and memoryInGB",
        )
    if cpu <= 0 or memory <= 0:
        return "InvalidContainerResourceRequests", "cpu and memoryInGB must be greater than zero"
    for variable in props.get("environmentVariables") or []:
        if not isinstance(variable, dict) or not isinstance(variable.get("name"), str):
            return "InvalidRequestContent", f"{where}: every environment variable needs a name"
        if not ENV_NAME.match(variable["name"]):
            return "InvalidEnvironmentVariable", f"environment variable name '{variable['name']}' is invalid"
        if "value" in variable and "secureValue" in variable:
            return "InvalidEnvironmentVariable", f"'{variable['name']}' has both value and secureValue"
    return None


def _validate_registry_credentials(body: dict[str, Any], credentials: Any) -> Problem | None:
    """ARM's rules for ``imageRegistryCredentials``: a server, and a username with a password or a
    user-assigned identity that the group itself has."""
    if not isinstance(credentials, list):
        return "InvalidRequestContent", "properties.imageRegistryCredentials must be a list"
    assigned = ((body.get("identity") or {}).get("userAssignedIdentities")) or {}
    for index, credential in enumerate(credentials):
        where = f"properties.imageRegistryCredentials[{index}]"
        if not isinstance(credential, dict) or not isinstance(credential.get("server"), str):
            return "InvalidImageRegistryCredential", f"{where}.server is required"
        if credential.get("identity") is not None:
            if credential["identity"] not in assigned:
                return (
                    "InvalidImageRegistryCredentialIdentity",
                    f"{where}.identity '{credential['identity']}' is not an identity of the container group",
                )
        elif not credential.get("username") or not credential.get("password"):
            return (
                "InvalidImageRegistryCredential",
                f"{where} needs a username and a password, or an identity",
            )
    return None


def validate_group(body: Any) -> Problem | None:
    if not isinstance(body, dict):
        return "InvalidRequestContent", "The request content was invalid and could not be deserialized."
    unknown = set(body) - GROUP_KEYS
    if unknown:
        return "InvalidRequestContent", f"unknown members: {sorted(unknown)}"
    if not isinstance(body.get("location"), str) or not body["location"]:
        return "LocationRequired", "The location property is required for this definition."
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        return "InvalidRequestContent", "tags must map strings to strings"
    props = body.get("properties")
    if not isinstance(props, dict):
        return "InvalidRequestContent", "properties is required"
    unknown = set(props) - GROUP_PROPERTIES
    if unknown:
        return "InvalidRequestContent", f"properties has unknown members: {sorted(unknown)}"
    if props.get("osType") not in OS_TYPES:
        return "InvalidOsType", f"properties.osType must be one of {sorted(OS_TYPES)}"
    restart = props.get("restartPolicy", "Always")
    if restart not in RESTART_POLICIES:
        return "InvalidRestartPolicy", f"properties.restartPolicy must be one of {sorted(RESTART_POLICIES)}"
    if "priority" in props and props["priority"] not in PRIORITIES:
        return "InvalidPriority", f"properties.priority must be one of {sorted(PRIORITIES)}"
    if "imageRegistryCredentials" in props:
        problem = _validate_registry_credentials(body, props["imageRegistryCredentials"])
        if problem:
            return problem
    containers = props.get("containers")
    if not isinstance(containers, list) or not containers:
        return "InvalidRequestContent", "properties.containers must hold at least one container"
    total_cpu = total_memory = 0.0
    for index, container in enumerate(containers):
        problem = _validate_container(index, container)
        if problem:
            return problem
        requests = container["properties"]["resources"]["requests"]
        total_cpu += requests["cpu"]
        total_memory += requests["memoryInGB"]
    if total_cpu > MAX_CPU or total_memory > MAX_MEMORY_GB:
        return (
            "ContainerGroupQuotaReached",
            f"The requested resource with 'cpu: {total_cpu}, memoryInGB: {total_memory}' is not available in "
            f"the location '{body['location']}' (limit {MAX_CPU} cpu, {MAX_MEMORY_GB} GB per group).",
        )
    return None
