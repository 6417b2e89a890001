"""Calling a remote engine: timeouts, retries with backoff and jitter, a circuit breaker.

`RemoteTarget.call(fn)` runs one remote operation. A transient failure (connection refused
or reset, timeout, HTTP 429/5xx: the caller's `transient` predicate decides) is retried
with exponential backoff and full jitter (tenacity); anything else is raised at once. Every
attempt passes the circuit breaker: after `fail_max` transient failures in a row it opens,
and calls fail at once with `RemoteUnavailable` ("… is down; retrying in N s") instead of
hammering a dead server, until `reset_s` have passed and one trial call is let through
(half-open); its success closes the breaker. State and last error are shown in `status`
and exported as metrics.

The breaker is written here rather than taken from pybreaker: pybreaker holds one lock
across the whole wrapped call, which would queue an interactive search's query embedding
behind a 30-second indexing batch to the same server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from indexer.core import metrics
from indexer.core.errors import RemoteUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN = "closed", "half-open", "open"
_STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class BreakerOpen(RemoteUnavailable):
    """The target failed repeatedly; calls fail fast until its reset time has passed."""


class RemoteTarget:
    """One remote engine (a Chroma server, an embeddings server) and its breaker."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        transient: Callable[[BaseException], bool],
        retries: int = 4,
        fail_max: int = 5,
        reset_s: float = 30.0,
        backoff_max_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.url = url
        self.transient = transient
        self.retries = retries
        self.fail_max = fail_max
        self.reset_s = reset_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._lock = threading.Lock()  # guards the counters only, never held across a call
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self.last_error: str | None = None
        self.retried = 0
        metrics.BREAKER_STATE.labels(name).set(0)

    # -- breaker ---------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if time.monotonic() - self._opened_at >= self.reset_s:
            return HALF_OPEN
        return OPEN

    def _admit(self) -> bool:
        """Whether an attempt may go out now; True means it is the half-open trial."""
        with self._lock:
            state = self._state_locked()
            if state == CLOSED:
                return False
            if state == HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            wait = max(0.0, self.reset_s - (time.monotonic() - (self._opened_at or 0.0)))
        metrics.REMOTE_CALLS.labels(self.name, "refused").inc()
        raise BreakerOpen(
            f"the {self.name} at {self.url} is down ({self.last_error}); not calling it again "
            f"for {wait:.0f} s. Check that the server runs, or unset its URL to work locally."
        )

    def _record(self, ok: bool, trial: bool, exc: BaseException | None = None) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            if ok:
                if self._opened_at is not None:
                    log.warning("the %s at %s answers again", self.name, self.url)
                self._failures, self._opened_at = 0, None
            else:
                self.last_error = _describe(exc)
                self._failures += 1
                if trial or self._failures >= self.fail_max:
                    if self._opened_at is None or trial:
                        log.warning("the %s at %s is down (%s): failing fast for %.0f s",
                                    self.name, self.url, self.last_error, self.reset_s)
                    self._opened_at = time.monotonic()
            state = self._state_locked()
        metrics.BREAKER_STATE.labels(self.name).set(_STATE_VALUE[state])

    # -- calls -----------------------------------------------------------------------
    def _attempt(self, fn: Callable[[], T]) -> T:
        trial = self._admit()
        try:
            result = fn()
        except BaseException as exc:
            if self.transient(exc):
                self._record(False, trial, exc)
                metrics.REMOTE_CALLS.labels(self.name, "transient").inc()
            else:
                # The server answered (a 4xx, a bad request): it is up; the call was wrong.
                self._record(True, trial)
                metrics.REMOTE_CALLS.labels(self.name, "error").inc()
            raise
        self._record(True, trial)
        metrics.REMOTE_CALLS.labels(self.name, "ok").inc()
        return result

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retried += 1
        metrics.REMOTE_RETRIES.labels(self.name).inc()
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s at %s: %s; retry %d of %d", self.name, self.url, _describe(exc),
                 state.attempt_number, self.retries)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` with retries for transient failures; RemoteUnavailable once they run out."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: self.transient(e) and not isinstance(e, BreakerOpen)),
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_random_exponential(multiplier=0.25, max=self.backoff_max_s),
            before_sleep=self._before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, fn)
        except BreakerOpen:
            raise
        except Exception as exc:
            if not self.transient(exc):
                raise
            raise RemoteUnavailable(
                f"the {self.name} at {self.url} did not answer after {self.retries + 1} attempts "
                f"({_describe(exc)}). Check that the server runs and is reachable."
            ) from exc

    def status(self) -> dict[str, object]:
        """For `status`/`forge/status`: where, breaker state, the last error, retries so far."""
        return {"url": self.url, "breaker": self.state, "lastError": self.last_error,
                "retries": self.retried}


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
