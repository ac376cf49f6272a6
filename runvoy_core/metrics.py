"""A tiny in-process metrics registry: counters and histograms with labels, exported as Prometheus text.

runvoy runs as a short-lived CLI or inside someone else's program, so there is no server and no push
gateway here: callers read ``Metrics.to_prometheus()`` (or ``snapshot()``) when they want the numbers.
Everything is thread-safe; a watcher thread and the main thread may record at the same time.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

LabelValues = tuple[str, ...]

# seconds: from a fast local CAS (milliseconds) to a long wait for a busy lock (tens of minutes)
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels_text(names: Sequence[str], values: Sequence[str], extra: Iterable[tuple[str, str]] = ()) -> str:
    pairs = [*zip(names, values, strict=True), *extra]
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


class _Metric(ABC):
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str], lock: threading.Lock) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = lock

    def _key(self, labels: dict[str, Any]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(
                f"metric {self.name} takes labels {self.labelnames}, got {tuple(sorted(labels))}"
            )
        return tuple(str(labels[n]) for n in self.labelnames)

    @abstractmethod
    def render(self) -> list[str]:
        """The metric's lines in the Prometheus text format."""


class Counter(_Metric):
    """A value that only goes up (events, errors)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str], lock: threading.Lock) -> None:
        super().__init__(name, help_text, labelnames, lock)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: Any) -> None:
        if amount < 0:
            raise ValueError("a counter cannot go down")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: Any) -> float:
        key = self._key(labels)
        with self._lock:
            return self._values.get(key, 0.0)

    def total(self) -> float:
        with self._lock:
            return sum(self._values.values())

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels_text(self.labelnames, k)} {_format_value(v)}" for k, v in items]


class _HistogramSeries:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.count = 0
        self.sum = 0.0


class Histogram(_Metric):
    """Distribution of observed values (durations in seconds) in cumulative buckets, with count and sum."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str],
        lock: threading.Lock,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labelnames, lock)
        if list(buckets) != sorted(buckets) or not buckets:
            raise ValueError("histogram buckets must be a non-empty increasing sequence")
        self.bounds = tuple(float(b) for b in buckets)
        self._series: dict[LabelValues, _HistogramSeries] = {}

    def observe(self, value: float, **labels: Any) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _HistogramSeries(len(self.bounds))
            series.count += 1
            series.sum += value
            for i, bound in enumerate(self.bounds):
                if value <= bound:
                    series.buckets[i] += 1

    def count(self, **labels: Any) -> int:
        key = self._key(labels)
        with self._lock:
            series = self._series.get(key)
            return series.count if series else 0

    def sum(self, **labels: Any) -> float:
        key = self._key(labels)
        with self._lock:
            series = self._series.get(key)
            return series.sum if series else 0.0

    def render(self) -> list[str]:
        lines: list[str] = []
        with self._lock:
            items = sorted((k, (list(s.buckets), s.count, s.sum)) for k, s in self._series.items())
        for key, (buckets, count, total) in items:
            for bound, n in zip(self.bounds, buckets, strict=True):
                le = (("le", _format_value(bound)),)
                lines.append(f"{self.name}_bucket{_labels_text(self.labelnames, key, le)} {n}")
            inf = (("le", "+Inf"),)
            lines.append(f"{self.name}_bucket{_labels_text(self.labelnames, key, inf)} {count}")
            lines.append(f"{self.name}_sum{_labels_text(self.labelnames, key)} {_format_value(total)}")
            lines.append(f"{self.name}_count{_labels_text(self.labelnames, key)} {count}")
        return lines


class Metrics:
    """A registry. ``counter()``/``histogram()`` return the existing metric when called again with the same
    name, so modules can declare what they record at use time without a central list."""

    def __init__(self, namespace: str = "runvoy") -> None:
        self.namespace = namespace
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def _full(self, name: str) -> str:
        return f"{self.namespace}_{name}" if self.namespace else name

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._get(Counter, name, help_text, labelnames)

    def histogram(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        full = self._full(name)
        with self._lock:
            existing = self._metrics.get(full)
            if existing is None:
                metric = Histogram(full, help_text, labelnames, threading.Lock(), buckets)
                self._metrics[full] = metric
                return metric
        checked: Histogram = self._check(existing, Histogram, labelnames)
        return checked

    def _get(self, cls: type[Counter], name: str, help_text: str, labelnames: Sequence[str]) -> Counter:
        # Prometheus convention: a counter's samples (and so its TYPE line, in text format 0.0.4) end in _total
        full = self._full(name if name.endswith("_total") else name + "_total")
        with self._lock:
            existing = self._metrics.get(full)
            if existing is None:
                metric = cls(full, help_text, labelnames, threading.Lock())
                self._metrics[full] = metric
                return metric
        checked: Counter = self._check(existing, cls, labelnames)
        return checked

    @staticmethod
    def _check(existing: _Metric, cls: type[Any], labelnames: Sequence[str]) -> Any:
        if not isinstance(existing, cls) or existing.labelnames != tuple(labelnames):
            raise ValueError(
                f"metric {existing.name} already registered as a {existing.kind} with labels {existing.labelnames}"
            )
        return existing

    def get(self, name: str) -> _Metric | None:
        with self._lock:
            for candidate in (self._full(name), self._full(name) + "_total", name):
                if candidate in self._metrics:
                    return self._metrics[candidate]
            return None

    def to_prometheus(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        out: list[str] = []
        for metric in metrics:
            out.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            out.append(f"# TYPE {metric.name} {metric.kind}")
            out.extend(metric.render())
        return "\n".join(out) + ("\n" if out else "")

    def reset(self) -> None:
        """Forget every metric (tests)."""
        with self._lock:
            self._metrics.clear()


_default = Metrics()


def default_metrics() -> Metrics:
    """The process-wide registry that runvoy's modules record into unless given another one."""
    return _default
