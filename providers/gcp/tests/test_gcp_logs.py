"""Cloud Logging reads: exact paging (no loss, no duplicate) even when many lines share a timestamp,
pattern filter, follow while running, and the archive in GCS."""

from __future__ import annotations

import time

from runvoy_core.models import ExecutionRequest
from runvoy_core.ports import TaskSpec
from runvoy_core.testing.waiting import wait_for


def spec_for(command: str, execution_id: str = "e1") -> TaskSpec:
    req = ExecutionRequest(command=command)
    return TaskSpec.from_request(
        execution_id, req, env={"RUNVOY_EXECUTION_ID": execution_id}, request_id=None
    )


def run_to_end(provider, command: str, execution_id: str = "e1") -> str:
    ref = provider.compute.start(spec_for(command, execution_id), execution_id)
    wait_for(lambda: provider.compute.describe(ref).ended, what=f"{ref} to end")
    return ref


def read_all(provider, ref: str, limit: int, pattern: str | None = None, reads: int = 10_000) -> list[str]:
    messages: list[str] = []
    cursor = None
    for _ in range(reads):
        page = provider.logs.read(ref, cursor, limit, pattern)
        if not page.events and page.cursor == cursor:
            break
        messages.extend(e.message for e in page.events)
        cursor = page.cursor
    return messages


def test_paging_is_exact_with_shared_timestamps(provider, fake_logging, project) -> None:
    ref = run_to_end(provider, "seq 1 1500")
    stamps = {
        e["timestamp"]
        for e in fake_logging.store.snapshot()
        if e["logName"].startswith(f"projects/{project}/")
    }
    assert len(stamps) < 1500  # many lines share one timestamp: the case a timestamp-only cursor gets wrong
    expected = [str(i) for i in range(1, 1501)]
    assert read_all(provider, ref, 1000) == expected
    assert read_all(provider, ref, 333) == expected


def test_small_pages_are_exact_with_shared_timestamps(provider) -> None:
    # a cursor inside a run of entries that share one timestamp: each page must start right after it
    ref = run_to_end(provider, "seq 1 120")
    expected = [str(i) for i in range(1, 121)]
    assert read_all(provider, ref, 7) == expected
    assert read_all(provider, ref, 1, reads=30) == expected[:30]


def test_other_executions_are_not_mixed_in(provider) -> None:
    first = run_to_end(provider, "echo one", "e1")
    second = run_to_end(provider, "echo two", "e2")
    assert read_all(provider, first, 100) == ["one"]
    assert read_all(provider, second, 100) == ["two"]


def test_pattern_filter_is_exact_and_keeps_the_cursor_moving(provider) -> None:
    ref = run_to_end(provider, "for i in 1 2 3 4 5 6; do echo line-$i; echo ERROR-$i; done; echo error-lower")
    assert read_all(provider, ref, 2, pattern="ERROR") == [f"ERROR-{i}" for i in range(1, 7)]
    assert read_all(provider, ref, 100, pattern="line-3") == ["line-3"]


def test_follow_while_running_then_final_read(provider) -> None:
    ref = provider.compute.start(spec_for("for i in $(seq 1 20); do echo tick-$i; sleep 0.02; done"), "e1")
    seen: list[str] = []
    cursor = None
    reads = 0
    while True:
        ended = provider.compute.describe(ref).ended
        page = provider.logs.read(ref, cursor, 5)
        seen.extend(e.message for e in page.events)
        cursor = page.cursor
        reads += 1
        if ended and not page.events:
            break
        time.sleep(0.02)
    assert seen == [f"tick-{i}" for i in range(1, 21)]
    assert reads > 4


def test_empty_page_keeps_the_cursor(provider) -> None:
    ref = run_to_end(provider, "true")
    page = provider.logs.read(ref)
    assert page.events == [] and page.cursor is None
    ref2 = run_to_end(provider, "echo x", "e2")
    first = provider.logs.read(ref2)
    again = provider.logs.read(ref2, first.cursor)
    assert again.events == [] and again.cursor == first.cursor


def test_filter_sent_names_job_execution_and_a_timestamp(provider, fake_logging) -> None:
    ref = run_to_end(provider, "echo a")
    provider.logs.read(ref)
    body = fake_logging.server.calls_to("logging.entries.list")[-1].body
    job = ref.split("/")[5]
    execution = ref.split("/")[7]
    assert f'resource.labels.job_name="{job}"' in body["filter"]
    assert f'labels."run.googleapis.com/execution_name"="{execution}"' in body["filter"]
    assert 'resource.type="cloud_run_job"' in body["filter"]
    # our own timestamp term: the client library would otherwise add "the last 24 hours"
    assert body["filter"].count("timestamp") == 1


def test_archive_to_gcs(provider) -> None:
    ref = run_to_end(provider, "echo out; echo err >&2")
    uri = provider.logs.archive(ref, "e1")
    assert uri == f"gs://{provider.clients.bucket_name}/runvoy/logs/e1.jsonl"
    events = provider.logs.read_archive("e1")
    assert [(e.stream, e.message) for e in events] == [("stdout", "out"), ("stderr", "err")]
    assert provider.logs.read_archive("nope") is None


def test_reads_fall_back_to_the_archive_after_retention(provider, fake_logging, project) -> None:
    ref = run_to_end(provider, "echo one; echo two; echo err >&2; echo three")
    before = provider.logs.read(ref)
    provider.logs.archive(ref, "e1")
    fake_logging.store.expire(project)
    assert provider.logs.read_entries(ref, None, 10, None) == []
    expected = [e.message for e in before.events]
    assert sorted(expected) == ["err", "one", "three", "two"]
    assert read_all(provider, ref, 1) == expected
    page = provider.logs.read(ref)
    assert [(e.stream, e.message) for e in page.events] == [(e.stream, e.message) for e in before.events]
    assert provider.logs.read(ref, page.cursor).events == []
    assert [e.message for e in provider.logs.read(ref, pattern="o").events] == ["one", "two"]
    # archiving again (a second finalizer) keeps the archive whole
    provider.logs.archive(ref, "e1")
    assert read_all(provider, ref, 100) == expected


def test_no_archive_and_no_entries_is_an_empty_page(provider) -> None:
    ref = run_to_end(provider, "true")
    assert provider.logs.read(ref).events == []


def test_a_page_emptied_by_the_exact_pattern_does_not_end_the_read(provider) -> None:
    # the server-side ':' ignores case, so the first page holds only lines the exact test drops
    ref = run_to_end(provider, "echo error-a; echo error-b; echo ERROR-c")
    page = provider.logs.read(ref, None, 2, pattern="ERROR")
    assert [e.message for e in page.events] == ["ERROR-c"]
