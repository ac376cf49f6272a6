"""A team on a real ``runvoy server`` process, for the security tests (decision 1520): accounts of each role in
two teams, each with its own key, and an HTTP client speaking for any of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import RunningServer, StartServer, new_token

ACCOUNTS: dict[str, tuple[str, str]] = {
    "op-data": ("operator", "data"),
    "view-data": ("viewer", "data"),
    "op-web": ("operator", "web"),
    "view-web": ("viewer", "web"),
}
"""name -> (role, team); the bootstrap ``admin`` (team ``admins``) is the fifth caller."""
OPEN = "[serve]\nrate = 100000\nburst = 1000000\n"
"""A server config without the per-key rate limit getting in the way of tests that send many requests."""


def write_config(home: Path, text: str) -> Path:
    path = home / "runvoy-test.toml"
    path.write_text(text)
    return path


@dataclass
class Team:
    server: RunningServer
    tokens: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))

    @property
    def url(self) -> str:
        return self.server.url

    def call(
        self,
        who: str | None,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        url: str | None = None,
    ) -> httpx.Response:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.http.request(
            method, (url or self.url) + path, json=json_body, params=params, headers=headers
        )

    def ok(self, who: str, method: str, path: str, *, status: int | None = None, **kw: Any) -> Any:
        response = self.call(who, method, path, **kw)
        assert response.status_code < 300 if status is None else response.status_code == status, (
            method,
            path,
            response.status_code,
            response.text,
        )
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )

    def add_user(self, name: str, role: str, team: str) -> str:
        self.ok("admin", "POST", "/v1/users", json_body={"name": name, "role": role, "team": team})
        return self.add_key(name)

    def add_key(self, user: str) -> str:
        made = self.ok("admin", "POST", "/v1/keys", json_body={"user": user})
        self.tokens.setdefault(user, made["token"])
        return str(made["token"])

    def close(self) -> None:
        self.http.close()


def make_team(start_server: StartServer, home: Path, *, config: str = OPEN, **kw: Any) -> Team:
    token = new_token()
    server = start_server(
        home=home, token=token, env={"RUNVOY_CONFIG": str(write_config(home, config))}, **kw
    )
    team = Team(server, {"admin": token})
    for name, (role, team_name) in ACCOUNTS.items():
        team.add_user(name, role, team_name)
    return team


def sse_events(response: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) of a whole Server-Sent Events answer."""
    events: list[tuple[str, str]] = []
    name, data = "message", []
    for line in response.text.splitlines():
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        events.append((name, "\n".join(data)))
    return events


def outcome(response: httpx.Response) -> tuple[int, str | None]:
    """(HTTP status, error code) — for an event stream, the error its ``error`` event carries (a refusal of a
    streamed run comes in the stream: the answer had started)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for name, data in sse_events(response):
            if name == "error":
                return response.status_code, json.loads(data)["error"]["code"]
        return response.status_code, None
    if response.status_code >= 400:
        try:
            return response.status_code, response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return response.status_code, "<not a JSON error>"
    return response.status_code, None


def operations(team: Team) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation) of every operation of the server's own OpenAPI schema."""
    spec = team.http.get(team.url + "/v1/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "delete", "patch"):
                yield method.upper(), path, operation
