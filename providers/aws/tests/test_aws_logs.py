"""CloudWatch Logs reads: paging, end of stream, resuming, filtering, the S3 archive."""

from __future__ import annotations

import time

from aws_test_tools import wait_ended

from runvoy_core.ports import TaskSpec

REF = "arn:aws:ecs:us-east-1:123456789012:task/runvoy/0123456789abcdef"


def put(provider, ref: str, messages: list[str], after_ms: int = 0) -> None:
    logs = provider.clients.client("logs")
    stream = provider.logs.stream_name(ref)
    try:
        logs.create_log_stream(logGroupName=provider.config.log_group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000) + after_ms
    logs.put_log_events(
        logGroupName=provider.config.log_group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def test_the_stream_name_is_the_awslogs_one(provider) -> None:
    assert provider.logs.stream_name(REF) == "runvoy/main/0123456789abcdef"


def test_a_missing_stream_reads_as_an_empty_page(provider) -> None:
    page = provider.logs.read(REF)
    assert page.events == [] and page.cursor is None
    assert provider.logs.read(REF, "f/123").cursor == "f/123"


def test_pages_resume_from_the_cursor_and_the_end_is_detected(provider) -> None:
    put(provider, REF, [f"line {i}" for i in range(25)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = provider.logs.read(REF, cursor, limit=10)
        pages += 1
        if not page.events:
            assert page.cursor == cursor  # the end: the token came back unchanged
            break
        seen.extend(e.message for e in page.events)
        cursor = page.cursor
    assert seen == [f"line {i}" for i in range(25)]
    assert pages == 4
    # new lines after the end are picked up from the same cursor (follow mode)
    # (CloudWatch orders a stream by event time: the late lines are stamped after the first batch)
    put(provider, REF, ["late 1", "late 2"], after_ms=1000)
    assert [e.message for e in provider.logs.read(REF, cursor).events] == ["late 1", "late 2"]


def test_a_pattern_keeps_matching_lines_only(provider) -> None:
    put(provider, REF, ["alpha ERROR one", "beta", "gamma ERROR two", "delta"])
    page = provider.logs.read(REF, pattern="ERROR")
    assert [e.message for e in page.events] == ["alpha ERROR one", "gamma ERROR two"]
    assert provider.logs.read(REF, page.cursor, pattern="ERROR").events == []


def test_a_filtered_read_skips_pages_without_matches(provider) -> None:
    put(provider, REF, [f"noise {i}" for i in range(30)] + ["needle"])
    page = provider.logs.read(REF, limit=10, pattern="needle")
    assert [e.message for e in page.events] == ["needle"]


def test_the_archive_holds_the_whole_log_in_s3(provider, sim) -> None:
    spec = TaskSpec(
        execution_id="abcabcabcabc", argv=["/bin/sh", "-c", "for i in 1 2 3; do echo out $i; done"]
    )
    ref = provider.compute.start(spec, "abcabcabcabc")
    wait_ended(provider, ref)
    uri = provider.logs.archive(ref, "abcabcabcabc")
    assert uri == "s3://runvoy-test-archive/logs/abcabcabcabc.log"
    body = provider.clients.client("s3").get_object(Bucket="runvoy-test-archive", Key="logs/abcabcabcabc.log")
    lines = body["Body"].read().decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["out 1", "out 2", "out 3"]
    assert lines[0].split(" ", 1)[0].endswith("Z")


def test_a_filtered_read_with_a_small_limit_resumes_inside_a_page(provider) -> None:
    put(provider, REF, [f"{'hit' if i % 3 else 'miss'} {i}" for i in range(40)])
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        page = provider.logs.read(REF, cursor, limit=4, pattern="hit")
        assert len(page.events) <= 4
        if not page.events:
            break
        seen.extend(e.message for e in page.events)
        cursor = page.cursor
    assert seen == [f"hit {i}" for i in range(40) if i % 3]
    # the cursor of a cut-short page also works for an unfiltered reader
    first = provider.logs.read(REF, None, limit=2, pattern="hit")
    rest = provider.logs.read(REF, first.cursor, limit=3)
    assert [e.message for e in rest.events] == ["miss 3", "hit 4", "hit 5"]
