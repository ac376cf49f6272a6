"""Roles: what each may do, as sets of actions (decision 1507).

An action names a kind of operation, not an endpoint: ``runs.read`` covers get, status, events, wait, logs and
list; the table of which method needs which action is ``runvoy_core.team.guarded.ACTIONS``.

- ``viewer``: every ``*.read`` action, ``whoami``, and its own keys (list, revoke, rotate: ``keys.self``).
- ``operator``: a viewer's actions, plus starting runs and playbooks, stopping its team's runs, and releasing
  locks its team's runs hold. Policies (runvoy_core.team.policy) may narrow what it starts.
- ``admin``: every action, on every team. The admin-only actions may also require a second factor.
"""

from __future__ import annotations

RUNS_READ = "runs.read"
RUNS_START = "runs.start"
RUNS_KILL = "runs.kill"
RUNS_RECONCILE = "runs.reconcile"
LOCKS_READ = "locks.read"
LOCKS_RELEASE = "locks.release"
COST_READ = "cost.read"
BUDGETS_READ = "budgets.read"
BUDGETS_WRITE = "budgets.write"
PLAYBOOKS_RUN = "playbooks.run"
PROVIDERS_READ = "providers.read"
WHOAMI = "whoami"
USERS_READ = "users.read"
USERS_WRITE = "users.write"
KEYS_SELF = "keys.self"
"""Listing, revoking and rotating one's own keys."""
KEYS_WRITE = "keys.write"
"""Creating keys, and any key operation on another account's keys."""
POLICIES_READ = "policies.read"
POLICIES_WRITE = "policies.write"
AUDIT_READ = "audit.read"

VIEWER_ACTIONS = frozenset(
    {
        RUNS_READ,
        LOCKS_READ,
        COST_READ,
        BUDGETS_READ,
        PROVIDERS_READ,
        WHOAMI,
        USERS_READ,
        KEYS_SELF,
        POLICIES_READ,
    }
)
OPERATOR_ACTIONS = VIEWER_ACTIONS | {RUNS_START, RUNS_KILL, LOCKS_RELEASE, PLAYBOOKS_RUN}
ADMIN_ONLY = frozenset({RUNS_RECONCILE, BUDGETS_WRITE, USERS_WRITE, KEYS_WRITE, POLICIES_WRITE, AUDIT_READ})
"""What only an admin may do: these need the caller's second factor when the server requires one."""
ALL_ACTIONS = OPERATOR_ACTIONS | ADMIN_ONLY

GRANTS: dict[str, frozenset[str]] = {
    "viewer": VIEWER_ACTIONS,
    "operator": OPERATOR_ACTIONS,
    "admin": ALL_ACTIONS,
}

POLICY_ACTIONS = frozenset({RUNS_START, PLAYBOOKS_RUN})
"""The actions a policy can narrow for an operator (what it starts)."""


def grants(role: str, action: str) -> bool:
    return action in GRANTS.get(role, frozenset())
