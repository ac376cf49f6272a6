"""``runvoy setup --provider gcp``: the bucket, a best-effort API enablement check, the service account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc

from runvoy_gcp.calls import translate
from runvoy_gcp.clients import GcpClients
from runvoy_gcp.config import GcpConfig

APIS = {
    "run.googleapis.com": "Cloud Run Admin API",
    "logging.googleapis.com": "Cloud Logging API",
    "storage.googleapis.com": "Cloud Storage API",
    "secretmanager.googleapis.com": "Secret Manager API",
}


def _row(resource: str, action: str, detail: str) -> dict[str, Any]:
    return {"resource": resource, "action": action, "detail": detail}


def ensure_bucket(config: GcpConfig, clients: GcpClients, dry_run: bool) -> dict[str, Any]:
    name = clients.bucket_name
    resource = f"gs://{name}"
    try:
        clients.storage.get_bucket(name)
        return _row(resource, "exists", "execution records, locks and log archives")
    except gexc.NotFound:
        pass
    if dry_run:
        return _row(resource, "would create", f"bucket in {config.region}")
    try:
        clients.storage.create_bucket(name, location=config.region)
    except gexc.Conflict:
        return _row(resource, "exists", "created concurrently")
    return _row(resource, "created", f"bucket in {config.region} (uniform access)")


def _probe(api: str, clients: GcpClients, config: GcpConfig) -> None:
    if api == "run.googleapis.com":
        parent = f"projects/{clients.project}/locations/{config.region}"
        clients.jobs.list_jobs(request={"parent": parent, "page_size": 1}, timeout=config.request_timeout)
    elif api == "logging.googleapis.com":
        from runvoy_gcp.logs import CloudLoggingLogs

        since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        CloudLoggingLogs(config.model_copy(update={"retry_attempts": 1}), clients).list_raw(
            {
                "resourceNames": [f"projects/{clients.project}"],
                "pageSize": 1,
                "filter": f'timestamp>="{since}"',
            }
        )
    elif api == "storage.googleapis.com":
        next(iter(clients.storage.list_buckets(max_results=1)), None)
    elif api == "secretmanager.googleapis.com":
        clients.secrets.list_secrets(
            parent=f"projects/{clients.project}", page_size=1, timeout=config.request_timeout
        )


def check_apis(config: GcpConfig, clients: GcpClients) -> list[dict[str, Any]]:
    rows = []
    for api, title in APIS.items():
        try:
            _probe(api, clients, config)
            rows.append(_row(api, "exists", f"{title} answers"))
        except (gexc.PermissionDenied, gexc.Forbidden) as exc:
            text = str(exc)
            if "SERVICE_DISABLED" in text or "has not been used" in text or "disabled" in text.lower():
                rows.append(_row(api, "manual", f"enable it: gcloud services enable {api}"))
            else:
                rows.append(
                    _row(api, "manual", f"no permission to check ({title}); see the IAM roles in the README")
                )
        except Exception as exc:
            err = translate(exc, title)
            rows.append(_row(api, "manual", f"could not check: {err.message}"))
    return rows


def check_service_account(config: GcpConfig, clients: GcpClients) -> dict[str, Any]:
    account = config.service_account
    if not account:
        return _row("service account", "exists", "jobs run as the project's default compute service account")
    if config.anonymous_credentials:
        return _row(account, "manual", "not checked (anonymous credentials)")
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(clients.credentials)  # type: ignore[no-untyped-call]
    try:
        response = session.get(
            f"https://iam.googleapis.com/v1/projects/-/serviceAccounts/{account}",
            timeout=config.request_timeout,
        )
    except Exception as exc:
        return _row(account, "manual", f"could not check: {type(exc).__name__}")
    if response.status_code == 200:
        return _row(account, "exists", "grant it roles/secretmanager.secretAccessor for --secret")
    if response.status_code == 404:
        return _row(
            account,
            "manual",
            f"does not exist: gcloud iam service-accounts create {account.split('@')[0]}",
        )
    return _row(
        account,
        "manual",
        f"could not check (HTTP {response.status_code}); needs roles/iam.serviceAccountUser",
    )


def ensure_indexes(config: GcpConfig, clients: GcpClients, dry_run: bool) -> dict[str, Any]:
    """Runs stored by a version before the status and label indexes get their entries, once per bucket
    (decision 0606): until then ``list --status``/``--label`` does not show them."""
    from runvoy_gcp.objects import ObjectStore
    from runvoy_gcp.store import GcsExecutionStore

    resource = f"gs://{clients.bucket_name} status and label indexes"
    store = GcsExecutionStore(ObjectStore(config, clients))
    try:
        if store.indexed():
            return _row(resource, "exists", "every run is indexed")
        if dry_run:
            return _row(
                resource, "would create", "index the runs stored by earlier versions (reads each once)"
            )
        visited = store.reindex()
    finally:
        store.close()
    return _row(resource, "created", f"indexed {visited} stored run(s)")


def run_setup(config: GcpConfig, clients: GcpClients, dry_run: bool) -> list[dict[str, Any]]:
    rows = check_apis(config, clients)
    bucket = ensure_bucket(config, clients, dry_run)
    rows.append(bucket)
    if bucket["action"] != "would create":
        rows.append(ensure_indexes(config, clients, dry_run))
    rows.append(check_service_account(config, clients))
    return rows
