"""The in-memory register passes the same register contract as every provider's, and injects faults."""

from __future__ import annotations

import pytest

from runvoy_core.errors import TransientProviderError
from runvoy_core.testing.conformance.locks_register import LockRegisterConformance
from runvoy_core.testing.memory_register import FaultyRegister, MemoryLockRegister


class TestMemoryLockRegister(LockRegisterConformance):
    @pytest.fixture
    def register(self) -> MemoryLockRegister:
        return MemoryLockRegister()


class TestFaultyRegisterWithoutFaults(LockRegisterConformance):
    @pytest.fixture
    def register(self) -> FaultyRegister:
        return FaultyRegister(MemoryLockRegister())


def test_error_is_raised_before_the_write_and_lost_after_it() -> None:
    reg = FaultyRegister(MemoryLockRegister())
    reg.fail_next("error", op="create_if_absent")
    with pytest.raises(TransientProviderError):
        reg.create_if_absent("a", {"n": 1})
    assert reg.read("a") is None
    reg.fail_next("lost", op="create_if_absent")
    with pytest.raises(TransientProviderError):
        reg.create_if_absent("a", {"n": 1})
    seen = reg.read("a")
    assert seen is not None and seen.value == {"n": 1}
    reg.fail_next("lost", op="replace_if_version")
    with pytest.raises(TransientProviderError):
        reg.replace_if_version("a", {"n": 2}, seen.version)
    assert reg.read("a").value == {"n": 2}
    assert [kind for _, kind in reg.injected] == ["error", "lost", "lost"]


def test_queued_fault_waits_for_its_operation_and_outage_fails_everything() -> None:
    reg = FaultyRegister(MemoryLockRegister())
    reg.fail_next("error", op="replace_if_version")
    assert reg.create_if_absent("a", {}) is True  # not the queued op
    assert reg.read("a") is not None
    with pytest.raises(TransientProviderError):
        reg.replace_if_version("a", {}, reg.read("a").version)
    reg.down = True
    for call in (lambda: reg.read("a"), reg.list, lambda: reg.create_if_absent("b", {})):
        with pytest.raises(TransientProviderError):
            call()
    reg.down = False
    assert reg.read("b") is None


def test_random_fault_rates_are_reproducible() -> None:
    import random

    def run(seed: int) -> list[tuple[str, str]]:
        reg = FaultyRegister(MemoryLockRegister(), error_rate=0.3, lost_rate=0.3, rng=random.Random(seed))
        for i in range(50):
            try:
                reg.create_if_absent(f"k{i}", {})
            except TransientProviderError:
                pass
        return reg.injected

    assert run(1) == run(1) and 10 < len(run(1)) < 50
