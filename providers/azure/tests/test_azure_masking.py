"""Masked secrets on Azure (decision 1901): ACI puts the value in the container as a secure variable and keeps
what it prints; runvoy masks it in what it shows (logs, --json, a grep) and in every archive it writes to Blob
storage: at the end of the run, and before a stop (ACI drops a stopped group's logs)."""

from __future__ import annotations

import base64
import json
from typing import Any

from runvoy_core.models import new_execution_id
from runvoy_core.ports import TaskSpec
from runvoy_core.testing.waiting import wait_for

VALUE = "azure-s3cret-value-to-mask"
KEY_LINES = ["-----BEGIN KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "-----END KEY-----"]
SECRETS = {"secret_values": {"api-token": VALUE, "tls-key": "\n".join(KEY_LINES)}}


def test_the_secret_is_masked_in_what_runvoy_shows_and_archives(make_client: Any) -> None:
    rv = make_client(**SECRETS)
    encoded = base64.b64encode(f"key={VALUE}".encode()).decode()
    record = rv.run(
        'echo "token=$API_TOKEN"; printf "key=%s" "$API_TOKEN" | base64; printf "%s\\n" "$TLS_KEY"; echo done',
        secrets=["api-token", "tls-key"],
    )
    lines = [event.message for event in rv.logs(record.id)]
    assert lines[0] == "token=***" and lines[-4:] == ["***", "***", "***", "done"]
    assert not any(VALUE in line or encoded[8:24] in line for line in lines)
    assert [event.message for event in rv.logs(record.id, pattern=VALUE[:6])] == []
    archived = rv.provider.logs.archived_text(record.task_ref)
    assert archived is not None and "token=***" in archived
    assert VALUE not in archived and encoded[8:24] not in archived


def test_the_archive_written_before_a_stop_is_masked(make_provider: Any) -> None:
    provider = make_provider(**SECRETS)
    eid = new_execution_id()
    spec = TaskSpec(
        execution_id=eid, argv=["/bin/sh", "-c", 'echo "token=$API_TOKEN"; sleep 300'], secrets=["api-token"]
    )
    ref = provider.compute.start(spec, eid)
    wait_for(
        lambda: "token=" in json.dumps([e.message for e in provider.logs.read(ref).events]), what="the line"
    )
    provider.compute.stop(ref, 0, force=True)
    archived = provider.logs.archived_text(ref)
    assert archived is not None and "token=***" in archived and VALUE not in archived
