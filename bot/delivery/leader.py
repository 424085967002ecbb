"""Which process runs the dispatcher and the rhythm planner: one, however many serve requests.

SQLite (`SoleProcess`): the process holding the lock file next to the database leads from start
to stop; a second `sla-bot serve` on the same file stops at once (LockHeld).

PostgreSQL (`Election`): every replica serves HTTP and Socket Mode, and exactly one leads: the
one holding the dispatcher's advisory lock (`storage.leadership.DispatcherLock`). A standby
tries to take it every SLA_BOT_LEADER_RETRY seconds. The leader waits on the lock's session for
wake-ups (NOTIFY from a replica where something was declared) and proves the session alive with
a round trip every HEARTBEAT_S; a failed round trip loses the lead at once. A leader that cannot
prove its session for CLIENT_LEASE (a slow or silent network) stops dispatching until it can,
and the server ends a session silent for SLA_BOT_LEADER_LEASE (longer), so the old leader has
always stopped before a new one can start. Whatever slips through — a write the deposed leader
sends late — is fenced by the leadership epoch (`storage.outbox`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.clock import Clock
from bot.delivery.scheduler import SingletonLock
from storage.backend import Storage, StorageError
from storage.leadership import DispatcherLock, take_over
from storage.pg import PgStore

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0  # the leader proves its session this often (and waits for wake-ups meanwhile)
LEADER = "leader"
STANDBY = "standby"


def replica_name() -> str:
    """This process as other replicas see it in the leadership table: host (a pod's name on
    Kubernetes) and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    backend: str
    acquired: int  # times this process took the lead
    failovers: int  # ... of them from another process that led before
    lost: int  # times it lost the lead while running
    wakeups: int  # wake-ups received from other replicas

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_leader(self) -> bool: ...

    @property
    def epoch(self) -> int | None: ...

    def notify(self) -> None:
        """Tell whoever leads that something may be due now."""
        ...

    def detail(self) -> dict[str, object]: ...


# Called with the new epoch once this process leads (before it dispatches anything).
OnElected = Callable[[int | None], None]


class SoleProcess:
    """SQLite: the process holding the lock file leads, from `start` to `stop` (a second one
    never starts). It always dispatches when ticked: tests and tools that drive the dispatcher
    themselves do not take the lock, and their claims carry no epoch (nobody is fenced)."""

    def __init__(
        self,
        store: Storage,
        *,
        lock_file: Path | None,
        clock: Clock,
        on_elected: OnElected,
        holder: str | None = None,
    ) -> None:
        self.backend = store.backend
        self._store = store
        self._lock = SingletonLock(lock_file) if lock_file is not None else None
        self._clock = clock
        self._on_elected = on_elected
        self._holder = holder or replica_name()
        self._epoch: int | None = None
        self.acquired = self.failovers = self.lost = self.wakeups = 0

    def start(self) -> None:
        if self._lock is not None:
            self._lock.acquire()  # LockHeld: another process serves this database
            with self._store.immediate() as db:
                self._epoch = take_over(db, holder=self._holder, at=self._clock.now())
            self.acquired = 1
            self._on_elected(self._epoch)

    def stop(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def is_leader(self) -> bool:
        return True

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def notify(self) -> None:
        pass  # the one process that serves requests also dispatches

    def detail(self) -> dict[str, object]:
        return {"epoch": self._epoch, "holder": self._holder}


class Election:
    """PostgreSQL: take the dispatcher lock if free, hold it while the session lives."""

    def __init__(
        self,
        store: PgStore,
        *,
        clock: Clock,
        on_elected: OnElected,
        on_wake: Callable[[], None],
        retry_s: float,
        lease_s: float,
        holder: str | None = None,
    ) -> None:
        self.backend = store.backend
        self._store = store
        self._clock = clock
        self._on_elected = on_elected
        self._on_wake = on_wake
        self._retry_s = retry_s
        self._lease_s = lease_s
        # Stop acting well before the server ends a silent session: at most 60% of the lease.
        self._client_lease_s = max(HEARTBEAT_S * 1.5, lease_s * 0.6)
        self.holder = holder or replica_name()
        self._lock = DispatcherLock(store, holder=self.holder, lease_s=lease_s)
        self._epoch: int | None = None
        self._proven = 0.0  # monotonic time a round trip that proved the lock ours was sent
        self._leading = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None
        self.attempts = 0
        self.acquired = self.failovers = self.lost = self.wakeups = 0
        self.leader_since: datetime | None = None

    # ---------------------------------------------------------------- life cycle
    def start(self) -> None:
        """One attempt now (a lone replica leads before it serves), then the election runs in
        the background."""
        self._attempt()
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Give the lead up (the session closes): a standby takes over at its next try."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_S + CONNECT_WAIT_S)
        self._leading = False
        self._lock.drop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._leading:
                self._hold()
            elif not self._stopping.wait(self._retry_s):
                self._attempt()

    def _attempt(self) -> None:
        self.attempts += 1
        try:
            epoch = self._lock.try_take(self._clock.now())
        except StorageError as exc:
            self._unreachable(exc)
            return
        self._failing_since = None
        if epoch is None:
            return
        self._epoch, self._proven = epoch, time.monotonic()
        self.acquired += 1
        if epoch > 1:
            self.failovers += 1
        try:
            self._on_elected(epoch)
        except Exception:  # e.g. the database failed meanwhile: give the lead back, try again
            log.exception("taking over the dispatcher failed; standing by")
            self._lock.drop()
            return
        self._leading = True  # only now: what the last leader left in flight is handed out
        self.leader_since = self._clock.now()
        log.warning(
            "this replica (%s) now runs the dispatcher (leadership epoch %d)", self.holder, epoch
        )
        self._on_wake()  # deliver what is due at once, not at the next beat

    def _hold(self) -> None:
        """Wait for wake-ups until the next heartbeat, then prove the session alive."""
        try:
            woken = self._lock.wakes(HEARTBEAT_S)
            if woken:
                self.wakeups += woken
                self._on_wake()
            sent = time.monotonic()
            self._lock.ping()
            self._proven = sent
        except StorageError as exc:
            self._leading = False
            self.lost += 1
            self.leader_since = None
            log.warning(
                "lost the dispatcher lead (epoch %s): its database session ended (%s); standing by",
                self._epoch,
                " ".join(str(exc).split())[:300],
            )

    def _unreachable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            log.warning(
                "cannot reach the database to take the dispatcher lead: %s (trying every %.1f s)",
                " ".join(str(exc).split())[:300],
                self._retry_s,
            )

    # ---------------------------------------------------------------- state
    def is_leader(self) -> bool:
        """Leading, and the lock proven ours recently enough to act on it."""
        return self._leading and time.monotonic() - self._proven < self._client_lease_s

    @property
    def epoch(self) -> int | None:
        return self._epoch if self._leading else None

    def notify(self) -> None:
        if self._leading:
            return  # the caller wakes its own dispatcher
        try:
            self._store.notify_wake()
        except StorageError as exc:  # the leader's next beat (a second at most) finds it anyway
            log.warning("could not wake the dispatcher on the leading replica: %s", exc)

    def detail(self) -> dict[str, object]:
        return {
            "epoch": self._epoch,
            "holder": self.holder,
            "attempts": self.attempts,
            "acquired": self.acquired,
            "lost": self.lost,
            "wakeups": self.wakeups,
            "leader_since": self.leader_since.isoformat() if self.leader_since else None,
        }


CONNECT_WAIT_S = 15.0  # how long `stop` waits for an attempt stuck connecting


class LeadershipMetrics(Collector):
    """`sla_bot_dispatcher_leader` (1 on the replica that dispatches) and the counters behind
    it, read at scrape time."""

    def __init__(self, leadership: Leadership) -> None:
        self._leadership = leadership

    def collect(self) -> Iterator[Metric]:
        lead = self._leadership
        yield GaugeMetricFamily(
            "sla_bot_dispatcher_leader",
            "1 when this replica runs the dispatcher and the rhythm planner, else 0.",
            value=1 if lead.is_leader() else 0,
        )
        yield CounterMetricFamily(
            "sla_bot_dispatcher_failovers",
            "Times this replica took the dispatcher over from another one that led before.",
            value=lead.failovers,
        )
        yield CounterMetricFamily(
            "sla_bot_dispatcher_leadership_lost",
            "Times this replica lost the dispatcher while running (its database session ended).",
            value=lead.lost,
        )
        yield CounterMetricFamily(
            "sla_bot_dispatcher_wakeups",
            "Wake-ups (LISTEN/NOTIFY) this replica received from others while leading.",
            value=lead.wakeups,
        )


def make_leadership(
    store: Storage,
    *,
    singleton: bool,
    lock_file: Path | None,
    clock: Clock,
    on_elected: OnElected,
    on_wake: Callable[[], None],
    retry_s: float,
    lease_s: float,
) -> Leadership:
    """An election among replicas on PostgreSQL; the lock file on SQLite."""
    if isinstance(store, PgStore) and singleton:
        return Election(
            store,
            clock=clock,
            on_elected=on_elected,
            on_wake=on_wake,
            retry_s=retry_s,
            lease_s=lease_s,
        )
    return SoleProcess(
        store,
        lock_file=lock_file if singleton and not isinstance(store, PgStore) else None,
        clock=clock,
        on_elected=on_elected,
    )
