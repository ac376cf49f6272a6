"""Checks requests against Google's official discovery documents (shipped in google-api-python-client).

The fakes answer a request only if it names a real method of the API, carries only the query parameters
that method declares (plus the system parameters), and has a body whose every field exists in the
method's request schema with the declared type. Anything else gets the 400 a Google API returns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# The REST transports of the GAPIC clients ask for integer enums ($alt=json;enum-encoding=int)
# and Google's servers accept both encodings.
_SYSTEM_ALT = re.compile(r"^(json|proto|media)(;enum-encoding=(int|string))?$")
_INT = re.compile(r"^-?\d+$")
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def documents_dir() -> Path:
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


@cache
def load_document(name: str) -> dict[str, Any]:
    return json.loads((documents_dir() / name).read_text(encoding="utf-8"))


class RequestRejected(Exception):
    """A request that the real API would refuse with 400 INVALID_ARGUMENT (or 404 for an unknown path)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class MatchedMethod:
    id: str
    http_method: str
    spec: dict[str, Any]
    params: dict[str, str]
    """Path parameters by the names of the method's ``path`` template (e.g. ``name``, ``parent``)."""


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = ""
    pos = 0
    for m in re.finditer(r"\{(\+?)([^}]+)\}", template):
        pattern += re.escape(template[pos : m.start()])
        group = re.sub(r"\W", "_", m.group(2))
        pattern += f"(?P<{group}>.+?)" if m.group(1) else f"(?P<{group}>[^/]+)"
        pos = m.end()
    pattern += re.escape(template[pos:])
    return re.compile("^" + pattern + "$")


class DiscoveryValidator:
    def __init__(self, document: str) -> None:
        self.doc = load_document(document)
        self.schemas: dict[str, Any] = self.doc["schemas"]
        self.system_params: dict[str, Any] = self.doc.get("parameters", {})
        self._methods: list[tuple[re.Pattern[str], re.Pattern[str], dict[str, Any]]] = []
        self._collect(self.doc.get("resources", {}))

    def _collect(self, resources: dict[str, Any]) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                flat = _template_regex("/" + method.get("flatPath", method["path"]))
                full = _template_regex("/" + method["path"])
                self._methods.append((flat, full, method))
            self._collect(resource.get("resources", {}))

    # -- routing -------------------------------------------------------------------------------------
    def match(self, http_method: str, path: str) -> MatchedMethod:
        allowed_other = False
        for flat, full, method in self._methods:
            if not flat.match(path):
                continue
            if method["httpMethod"] != http_method:
                allowed_other = True
                continue
            m = full.match(path)
            if m is None:
                continue
            params = {}
            for name, value in m.groupdict().items():
                spec = method.get("parameters", {}).get(name, {})
                if "pattern" in spec and not re.match(spec["pattern"], value):
                    raise RequestRejected(f"Invalid resource field value in the request: {name}={value}")
                params[name] = value
            return MatchedMethod(method["id"], http_method, method, params)
        if allowed_other:
            raise RequestRejected(f"Method {http_method} is not allowed on {path}", code=405)
        raise RequestRejected(f"The requested URL {path} was not found on this server.", code=404)

    # -- query ---------------------------------------------------------------------------------------
    def check_query(self, method: MatchedMethod, query: dict[str, list[str]]) -> None:
        declared = method.spec.get("parameters", {})
        for name, values in query.items():
            if name == "$alt":
                if not all(_SYSTEM_ALT.match(v) for v in values):
                    raise RequestRejected(f"Invalid value at '$alt' ({values[0]})")
                continue
            spec = declared.get(name) or self.system_params.get(name)
            if spec is None or spec.get("location") == "path":
                raise RequestRejected(
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                    f"Field '{name}' could not be found in request message."
                )
            if len(values) > 1 and not spec.get("repeated"):
                raise RequestRejected(f"Query parameter '{name}' given more than once")
            for value in values:
                self._check_scalar(value, spec, name, from_query=True)
        for name, spec in declared.items():
            if spec.get("required") and spec.get("location") == "query" and name not in query:
                raise RequestRejected(f"Required query parameter '{name}' is missing")

    # -- body ----------------------------------------------------------------------------------------
    def check_body(self, method: MatchedMethod, body: Any) -> None:
        request = method.spec.get("request")
        if request is None:
            if body not in (None, {}, b""):
                raise RequestRejected(f"{method.id} takes no request body")
            return
        if body is None:
            body = {}
        self._check_value(body, {"$ref": request["$ref"]}, "")

    def _check_value(self, value: Any, spec: dict[str, Any], where: str) -> None:
        if "$ref" in spec:
            schema = self.schemas[spec["$ref"]]
            return self._check_value(value, schema, where)
        kind = spec.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                raise RequestRejected(f"Invalid value at '{where or 'body'}': expected an object")
            props = spec.get("properties")
            extra = spec.get("additionalProperties")
            for key, item in value.items():
                here = f"{where}.{key}" if where else key
                if props is not None and key in props:
                    self._check_value(item, props[key], here)
                elif extra is not None:
                    self._check_value(item, extra, here)
                elif props is None and extra is None:
                    continue  # a free-form object (google.protobuf.Struct)
                else:
                    at = f" at '{where}'" if where else ""
                    raise RequestRejected(
                        f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
                    )
            return None
        if kind == "array":
            if not isinstance(value, list):
                raise RequestRejected(f"Invalid value at '{where}': expected a list")
            for i, item in enumerate(value):
                self._check_value(item, spec["items"], f"{where}[{i}]")
            return None
        if kind == "any":
            return None
        if value is None:
            return None  # JSON null is the default value for any field
        self._check_scalar(value, spec, where, from_query=False)
        return None

    def _check_scalar(self, value: Any, spec: dict[str, Any], where: str, *, from_query: bool) -> None:
        kind = spec.get("type")
        fmt = spec.get("format")
        bad = RequestRejected(f"Invalid value at '{where}' ({kind}{'/' + fmt if fmt else ''}), {value!r}")
        if "enum" in spec:
            if isinstance(value, int) and not isinstance(value, bool):
                if not 0 <= value < len(spec["enum"]):
                    raise bad
            elif from_query and isinstance(value, str) and _INT.match(value):
                if not 0 <= int(value) < len(spec["enum"]):
                    raise bad
            elif value not in spec["enum"]:
                raise bad
            return
        if kind == "boolean":
            ok = value in ("true", "false") if from_query else isinstance(value, bool)
        elif kind == "integer":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and bool(_INT.match(value))
            )
        elif kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if from_query:
                try:
                    float(value)
                    ok = True
                except ValueError:
                    ok = False
        elif kind == "string":
            if fmt in ("int64", "uint64"):
                ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                    isinstance(value, str) and bool(_INT.match(value))
                )
            elif not isinstance(value, str):
                ok = False
            elif fmt == "google-duration":
                ok = bool(_DURATION.match(value))
            elif fmt == "google-datetime":
                ok = bool(_TIMESTAMP.match(value))
            else:
                ok = True
        else:
            ok = True
        if not ok:
            raise bad
