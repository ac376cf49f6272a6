"""The metrics registry and its Prometheus text export."""

from __future__ import annotations

import re
import threading

import pytest

from runvoy_core.metrics import Metrics, default_metrics

SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+Inf]+$'
)


def test_counter_and_histogram_export() -> None:
    m = Metrics()
    c = m.counter("lock_waits", "Waits.", ["lock"])
    c.inc(lock="deploy")
    c.inc(2, lock="deploy")
    c.inc(lock='we"ird\nname')
    h = m.histogram("lock_hold_seconds", "Hold.", ["lock"], buckets=(1, 5))
    h.observe(0.5, lock="deploy")
    h.observe(3, lock="deploy")
    h.observe(7, lock="deploy")
    text = m.to_prometheus()
    lines = text.splitlines()
    assert "# TYPE runvoy_lock_waits_total counter" in lines
    assert 'runvoy_lock_waits_total{lock="deploy"} 3' in lines
    assert 'runvoy_lock_waits_total{lock="we\\"ird\\nname"} 1' in lines
    assert "# TYPE runvoy_lock_hold_seconds histogram" in lines
    assert 'runvoy_lock_hold_seconds_bucket{lock="deploy",le="1"} 1' in lines
    assert 'runvoy_lock_hold_seconds_bucket{lock="deploy",le="5"} 2' in lines
    assert 'runvoy_lock_hold_seconds_bucket{lock="deploy",le="+Inf"} 3' in lines
    assert 'runvoy_lock_hold_seconds_sum{lock="deploy"} 10.5' in lines
    assert 'runvoy_lock_hold_seconds_count{lock="deploy"} 3' in lines
    for line in lines:
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert text.endswith("\n")


def test_same_name_returns_same_metric_and_mismatch_is_an_error() -> None:
    m = Metrics()
    assert m.counter("x", "X.", ["a"]) is m.counter("x", "X.", ["a"])
    with pytest.raises(ValueError):
        m.counter("x", "X.", ["b"])
    with pytest.raises(ValueError):
        m.histogram("x_total", "X.", ["a"])
    with pytest.raises(ValueError):
        m.counter("x", "X.", ["a"]).inc(wrong="label")
    with pytest.raises(ValueError):
        m.counter("x", "X.", ["a"]).inc(-1, a="1")
    assert m.get("x") is m.counter("x", "X.", ["a"])


def test_thread_safe_counting() -> None:
    m = Metrics()
    c = m.counter("n", "N.")
    h = m.histogram("d", "D.")

    def work() -> None:
        for _ in range(2000):
            c.inc()
            h.observe(0.01)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.value() == 16000 and h.count() == 16000


def test_default_registry_is_shared_and_lock_metrics_land_in_it() -> None:
    from runvoy_core.locks import LockManager
    from runvoy_core.models import LockHolder
    from runvoy_core.testing.memory_register import MemoryLockRegister

    LockManager(MemoryLockRegister()).acquire("metrics-default", LockHolder(execution_id="e"))
    assert (
        'runvoy_lock_acquired_total{lock="metrics-default",how="created"} 1'
        in default_metrics().to_prometheus()
    )
    assert Metrics().to_prometheus() == ""
