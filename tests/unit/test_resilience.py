"""RemoteTarget: retries with bounded jitter for transient errors only, and its circuit breaker.

A fake clock (the breaker's `time.monotonic`) and a fake sleep (tenacity's waits) make the
timing exact and the tests instant.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from indexer.core import resilience
from indexer.core.errors import RemoteUnavailable
from indexer.core.resilience import BreakerOpen, RemoteTarget


class Transient(Exception):
    pass


class Fatal(Exception):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(resilience.time, "monotonic", c.monotonic)
    return c


def target(clock: Clock, **kw: object) -> RemoteTarget:
    opts: dict[str, object] = {"retries": 4, "fail_max": 5, "reset_s": 30.0, "backoff_max_s": 8.0}
    opts.update(kw)
    return RemoteTarget(
        "embedder", "http://127.0.0.1:1", transient=lambda e: isinstance(e, Transient),
        sleep=clock.sleep, **opts,  # type: ignore[arg-type]
    )


def failing(exc: Exception, calls: list[int]) -> Callable[[], int]:
    def fn() -> int:
        calls.append(1)
        raise exc
    return fn


def test_transient_errors_are_retried_then_reported(clock: Clock) -> None:
    t = target(clock, fail_max=100)
    calls: list[int] = []
    with pytest.raises(RemoteUnavailable, match="did not answer after 5 attempts"):
        t.call(failing(Transient("connection refused"), calls))
    assert len(calls) == 5 and len(clock.sleeps) == 4 and t.retried == 4
    assert t.status()["lastError"] == "connection refused"


def test_success_after_a_transient_failure(clock: Clock) -> None:
    t = target(clock)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Transient("reset")
        return "ok"

    assert t.call(flaky) == "ok"
    assert len(calls) == 3 and t.state == "closed"


def test_4xx_style_errors_are_not_retried_and_do_not_trip_the_breaker(clock: Clock) -> None:
    t = target(clock, fail_max=1)
    calls: list[int] = []
    for _ in range(3):
        with pytest.raises(Fatal):
            t.call(failing(Fatal("HTTP 400"), calls))
    assert len(calls) == 3 and clock.sleeps == [] and t.state == "closed"


def test_jitter_is_bounded(clock: Clock) -> None:
    t = target(clock, retries=8, fail_max=1000, backoff_max_s=2.0)
    for _ in range(20):
        with pytest.raises(RemoteUnavailable):
            t.call(failing(Transient("timeout"), []))
    assert len(clock.sleeps) == 20 * 8
    for n, s in enumerate(clock.sleeps):
        attempt = n % 8 + 1
        assert 0.0 <= s <= min(2.0, 0.25 * 2**attempt)
    assert len(set(clock.sleeps)) > 100  # random, not a fixed schedule


def test_breaker_opens_after_n_failures_and_fails_fast(clock: Clock) -> None:
    t = target(clock, retries=0, fail_max=3)
    calls: list[int] = []
    for _ in range(3):
        with pytest.raises(RemoteUnavailable):
            t.call(failing(Transient("connection refused"), calls))
    assert t.state == "open" and t.status()["breaker"] == "open"
    assert t.status()["lastError"] == "connection refused"
    with pytest.raises(BreakerOpen, match=r"is down \(connection refused\); not calling it again for 30 s"):
        t.call(failing(Transient("x"), calls))
    assert len(calls) == 3  # failed fast: the function was not called


def test_half_open_trial_success_closes_the_breaker(clock: Clock) -> None:
    t = target(clock, retries=0, fail_max=2, reset_s=30.0)
    for _ in range(2):
        with pytest.raises(RemoteUnavailable):
            t.call(failing(Transient("down"), []))
    clock.now += 29.0
    with pytest.raises(BreakerOpen):
        t.call(lambda: 1)
    clock.now += 1.0
    assert t.state == "half-open"
    assert t.call(lambda: 42) == 42
    assert t.state == "closed" and t.status()["breaker"] == "closed"


def test_half_open_trial_failure_reopens_at_once(clock: Clock) -> None:
    t = target(clock, retries=0, fail_max=2, reset_s=10.0)
    for _ in range(2):
        with pytest.raises(RemoteUnavailable):
            t.call(failing(Transient("down"), []))
    clock.now += 10.0
    calls: list[int] = []
    with pytest.raises(RemoteUnavailable):
        t.call(failing(Transient("still down"), calls))
    assert len(calls) == 1 and t.state == "open"
    with pytest.raises(BreakerOpen, match="still down"):
        t.call(lambda: 1)


def test_only_one_trial_while_half_open(clock: Clock) -> None:
    t = target(clock, retries=0, fail_max=1, reset_s=5.0)
    with pytest.raises(RemoteUnavailable):
        t.call(failing(Transient("down"), []))
    clock.now += 5.0
    seen: list[str] = []

    def trial() -> int:
        # A second caller arriving while the trial runs is refused, not let through.
        with pytest.raises(BreakerOpen):
            t.call(lambda: 0)
        seen.append("trial")
        return 7

    assert t.call(trial) == 7 and seen == ["trial"] and t.state == "closed"
