"""The delivery engine's tick: claim due outbox rows, send them concurrently, record them.

Exactly once, by construction:
- a row is claimed under the write lock with a fresh token; only that token can record it;
- a row whose send may have reached Slack (timeout, 5xx, a crash while `sending`) is looked up in
  Slack by its metadata key before it is posted again (`sending.Sender`);
- 429 moves only that row (`Retry-After`); 5xx/timeouts back off exponentially up to 10
  attempts, then the row goes `dead` with an admin alert (`failures.FailurePolicy`).

Throughput: claimed rows are queued for a bounded pool of at most SENDERS threads, so posts to
different channels are in flight together (a Slack call takes 100-300 ms; one sender would cap
delivery at a few posts a second). How many senders run is the `window.Window`: enough to cover
Slack's answer time, no more (extra threads only fight over the interpreter lock). Each sender
takes queued rows one after another, so none waits while the tick records or claims. A claim
takes at most one row per lane and never a lane whose row is still queued, in flight or
unrecorded, and `pacing.ChannelPace` allows one post in flight per channel and about one a
second: per-channel order and pacing hold whatever the pool size. What was sent is recorded in
batches, one transaction for every post that finished meanwhile (a crash before the record
leaves the row `sending`: looked up in Slack at restart, never posted twice); the record also
postpones the rest of a paced lane, so its next row is not claimed only to wait. A claim reads
each row's incident right after taking it, and a sender decides on that while it is under a
second old (`routing.SNAPSHOT_S`) instead of reading it again on a connection of its own.
A declaration or an action pokes a running tick (`poke`), which claims at once rather than
when its posts in flight come back.

Failure isolation: every row is handled inside its own error boundary. An unexpected exception is
recorded on that row like a failed send (attempt, reason, backoff, then `dead` with an admin
alert) and the others go on. Only storage failing stops a tick (after the posts in flight).
A row whose Slack call hangs holds only its own channel.

A channel that refuses the incident for good (archived, the bot removed) moves the incident to the
incidents channel, with a new card saying where it came from and an admin alert; a deleted card
is posted again. Executive notices that queue up on their channel are folded into one digest
(`folding`).

Customer updates (docs/design.md §11) are rows like any other: their posts are composed by
`bot.update_posts`, and the status page's calls (route `statuspage`, a lane of their own) are made
by `bot.statuspage` under the same claims, pacing and failure rules.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.delivery.failures import FailurePolicy
from bot.delivery.folding import Folder
from bot.delivery.pacing import ChannelPace
from bot.delivery.routing import (
    Composer,
    Drop,
    Hold,
    Move,
    Post,
    Router,
    Skip,
    StatuspageCall,
)
from bot.delivery.sending import Sender
from bot.delivery.statuspage import StatuspageSender
from bot.delivery.update_posts import UpdatePosts
from bot.delivery.window import Window
from bot.slackapi.gateway import SendFailed, SlackGateway, Transient
from matrix_engine.incidents import Incident
from matrix_engine.models import Matrix
from storage.db import StorageError
from storage.incidents import Incidents
from storage.outbox import LEASE, Claimed, Outbox, Sent

log = logging.getLogger("bot.delivery")

STATUSPAGE = "statuspage"  # the pace key of Statuspage calls: one a second per API key
SENDERS = 384  # posts in flight at most, each to a different channel (SLA_BOT_SENDERS)
CLAIM = 500  # rows claimed at a time (one per lane); more are claimed as the pool drains
MAX_CLAIMS = 10_000  # per tick; the scheduler ticks again at once if rows are still due
STUCK_S = 0.5  # a sender waiting on Slack longer than this leaves its place in the window
MEASURE_EVERY = 64  # rows handled between two readings of the CPU they took (`Window`)


class _Work:
    """One tick's rows: claimed and waiting for a sender, and what the senders made of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queued: collections.deque[Claimed] = collections.deque()
        self.senders = 0  # sender loops running
        # What the senders made of their rows; None when `Dispatcher.poke` woke the tick.
        self.finished: queue.SimpleQueue[tuple[Claimed, list[Sent] | BaseException] | None] = (
            queue.SimpleQueue()
        )

    def add(self, rows: list[Claimed]) -> None:
        with self.lock:
            self.queued.extend(rows)


class Dispatcher:
    """Sends whatever the outbox says is due. `tick()` is safe to call from any thread."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        incidents: Incidents,
        gateway: SlackGateway,
        clock: Clock,
        matrix: Callable[[], Matrix],
        admins: tuple[str, ...] = (),
        on_event: Callable[[str, dict[str, object]], None] | None = None,
        paced: bool = True,
        composer: Composer | None = None,
        heartbeat: Callable[[], None] | None = None,
        epoch: Callable[[], int | None] | None = None,
        leading: Callable[[], bool] | None = None,
        workspace_url: Callable[[], str | None] = lambda: None,
        senders: int = SENDERS,
        updates: UpdatePosts | None = None,
        statuspage: StatuspageSender | None = None,
    ) -> None:
        self._statuspage = statuspage
        self._matrix = matrix
        self._outbox = outbox
        self._clock = clock
        self._on_event = on_event or (lambda _name, _data: None)
        self._heartbeat = heartbeat or (lambda: None)
        self._senders = senders
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="delivery")
        self._window = Window(most=senders)
        self._asking: dict[int, float] = {}  # sender thread -> when its Slack call began
        self._pace = ChannelPace(paced=paced)
        self._router = Router(
            outbox=outbox,
            incidents=incidents,
            gateway=gateway,
            matrix=matrix,
            composer=composer,
            workspace_url=workspace_url,
            updates=updates,
        )
        self._folder = Folder(
            outbox=outbox,
            incidents=incidents,
            router=self._router,
            matrix=matrix,
            on_event=self._on_event,
        )
        self._sender = Sender(gateway)
        self._failures = FailurePolicy(
            outbox=outbox,
            incidents=incidents,
            clock=clock,
            matrix=matrix,
            admins=admins,
            on_event=self._on_event,
        )
        # The leadership epoch claims are made under, and whether this process still leads
        # (replicas on PostgreSQL): a row claimed before the lead was lost is left for the next
        # leader (its update would be fenced anyway).
        self._epoch = epoch or (lambda: None)
        self._leading = leading or (lambda: True)
        self._lock = threading.Lock()
        self._poked = threading.Event()
        self._work: _Work | None = None  # the running tick's

    def poke(self) -> None:
        """Something may have come due (a declaration, an action): a running tick claims again
        at once, instead of when its posts in flight have come back (a new card waited for
        them, a Slack answer's time, in a storm of declarations)."""
        self._poked.set()
        work = self._work
        if work is not None:
            work.finished.put(None)

    def tick(self, *, batch: int = CLAIM) -> int:
        """Send every due row, claiming more as the senders drain the queue, until none is due
        and none is in flight; returns how many rows were handled. A heartbeat follows every
        row, so a long catch-up reads as a working dispatcher."""
        with self._lock:
            self._outbox.in_background()
            work = self._work = _Work()
            try:
                return self._tick(work, batch)
            finally:
                self._work = None

    def _tick(self, work: _Work, batch: int) -> int:
        # Claimed by this tick, not yet recorded, by row and claim: a row moved to another
        # channel (`FailurePolicy`) is due again at once in a lane of its own, and may be
        # claimed again before the sender that moved it has reported back.
        outstanding: dict[tuple[int, str], Claimed] = {}
        handled, claims = 0, 0
        failure: BaseException | None = None
        claim, found, idle = True, 0, True
        measured = (_cpu_s(), 0)  # the process's CPU time, and posts handled, at that time
        while True:
            if self._poked.is_set() and len(outstanding) <= 2 * self._senders:
                claim = True
            if claim and failure is None and claims < MAX_CLAIMS and self._leading():
                self._poked.clear()
                busy = sorted({row.lane for row in outstanding.values()})
                claimed = self._outbox.claim_due(
                    now=self._clock.now(), limit=batch, epoch=self._epoch(), skip_lanes=busy
                )
                idle = not outstanding
                claims, claim, found = claims + 1, False, len(claimed)
                outstanding.update(((row.id, row.token), row) for row in claimed)
                work.add(claimed)
            self._staff(work)
            if not outstanding:
                stop = failure is not None or claims >= MAX_CLAIMS or not self._leading()
                if (found == 0 and idle) or stop:
                    break  # a claim with every lane free found nothing: none is due
                claim = True  # what was claimed is done: its lanes may have more due
                continue
            try:  # a post that finished, then every other one that finished meanwhile
                done = [work.finished.get(timeout=STUCK_S)]
            except queue.Empty:
                continue  # senders stuck on Slack no longer count: staff more
            while not work.finished.empty():
                done.append(work.finished.get())
            finished = [one for one in done if one is not None]
            sent: list[Sent] = []
            for row, result in finished:
                del outstanding[row.id, row.token]
                if isinstance(result, BaseException):  # only storage failures get here
                    failure = failure or result
                else:
                    sent.extend(result)
            handled += len(finished)
            if failure is None:
                try:
                    self._record(sent)
                except StorageError as exc:
                    failure = exc
            if handled - measured[1] >= MEASURE_EVERY:
                cpu_s = _cpu_s()
                self._window.spent(cpu_s=cpu_s - measured[0], posts=handled - measured[1])
                measured = (cpu_s, handled)
            # Claim again while the senders still have a round of rows queued (a claim
            # takes a while with thousands due), or, when the last claim found nothing,
            # once everything claimed is done.
            claim = found > 0 and len(outstanding) <= 2 * self._senders
        if failure is not None:
            raise failure
        return handled

    def _staff(self, work: _Work) -> None:
        """Start senders for the queued rows, as many as the window holds besides those stuck
        waiting on Slack (a call that hangs holds only its own channel)."""
        wanted = min(self._senders, self._window.size + self._stuck())
        with work.lock:
            start = max(0, min(wanted - work.senders, len(work.queued)))
            work.senders += start
        for _ in range(start):
            self._pool.submit(self._send_queued, work)

    def _send_queued(self, work: _Work) -> None:
        """One sender: queued rows one after another, while the window wants this many. The
        tick records what they make of them meanwhile, so senders never wait for it."""
        while True:
            with work.lock:  # (stuck senders are counted only when it matters)
                surplus = work.senders > self._window.size and work.senders > (
                    self._window.size + self._stuck()
                )
                if not work.queued or surplus:
                    work.senders -= 1
                    return
                row = work.queued.popleft()
            result: list[Sent] | BaseException
            try:
                result = self._deliver(row)
            except BaseException as exc:  # storage failed: the tick stops after what is claimed
                result = exc
            work.finished.put((row, result))

    def close(self) -> None:
        """Wait for posts in flight, then stop the senders."""
        self._pool.shutdown(wait=True)

    def _record(self, sent: list[Sent]) -> None:
        """One transaction for every post that finished meanwhile."""
        for one, recorded in zip(sent, self._outbox.record_sent(sent), strict=True):
            if not recorded:
                log.warning(
                    "%s is in Slack (%s) but was not recorded: the claim is no longer this "
                    "dispatcher's (it lapsed, or another replica took over)",
                    one.claimed.key,
                    one.ts,
                )
            else:
                late_s = (one.at - one.claimed.message.due_at).total_seconds()
                kind = one.claimed.message.kind.value
                self._on_event("sent", {"key": one.claimed.key, "kind": kind, "late_s": late_s})

    # ---------------------------------------------------------------- one row (a sender thread)
    def _deliver(self, row: Claimed) -> list[Sent]:
        """The row's error boundary: whatever goes wrong stays on this row."""
        self._outbox.in_background()
        if not self._leading():
            return []  # deposed meanwhile: the next leader hands the row out again
        try:
            return self._send(row)
        except StorageError:
            raise  # the database itself failed: no row can be recorded, the tick stops
        except Exception as exc:
            log.exception("delivery of %s failed unexpectedly", row.key)
            self._failures.crashed(row, exc)
            return []
        finally:
            self._heartbeat()

    def _send(self, row: Claimed) -> list[Sent]:
        now = self._clock.now()
        try:
            plan = self._router.plan(row, now)
        except SendFailed as exc:  # composing asked Slack something and failed
            self._failures.failed(row, exc, now)
            return []
        if isinstance(plan, Hold):
            self._outbox.release(row, at=plan.at, now=now)
            return []
        if isinstance(plan, Skip):
            self._outbox.mark_skipped(row, reason=plan.reason, at=now)
            self._on_event("skipped", {"key": row.key, "reason": plan.reason})
            return []
        if isinstance(plan, Drop):
            self._outbox.mark_dead(row, error=plan.error, at=now, attempted=False)
            return []
        if isinstance(plan, Move):
            self._outbox.reschedule(row, due_at=plan.due_at, now=now)
            return []
        if isinstance(plan, StatuspageCall):
            return self._call_statuspage(row, plan.incident, now)
        channel = plan.target.channel
        free_at = self._pace.take(channel, now)
        if free_at is not None:  # the lane waits, in one statement, until the channel is free
            self._outbox.hold_lane(row, until=free_at, now=now)
            return []
        posted_at: datetime | None = None
        try:
            post = self._folder.fold(row, plan, now)
            try:
                ts, reconciled = self._post(row, post, now)
            except BaseException:
                self._folder.give_back(post, now, ambiguous=True, reason="not sent")
                raise
            if ts is None:
                return []
            if not reconciled:  # a post found in Slack was made earlier, maybe by a killed process
                posted_at = now
                self._failures.reached_slack()
        finally:
            next_at = self._pace.done(channel, posted_at=posted_at)
        at = self._clock.now()
        rows = [(row, post.follow_up), *post.folded]
        return [
            Sent(
                one,
                channel,
                ts,
                at,
                follow_up,
                reconciled,
                post.is_card and one is row,
                lane_free_at=next_at if one is row else None,
            )
            for one, follow_up in rows
        ]

    def _call_statuspage(self, row: Claimed, incident: Incident, now: datetime) -> list[Sent]:
        """A Statuspage call (`bot.statuspage`), paced and retried like a post; its failures go
        through the same rules (429, backoff, dead with an admin alert)."""
        if self._statuspage is None:
            self._outbox.mark_skipped(row, reason="Statuspage is not connected", at=now)
            return []
        free_at = self._pace.take(STATUSPAGE, now)
        if free_at is not None:
            self._outbox.hold_lane(row, until=free_at, now=now)
            return []
        called_at: datetime | None = None
        try:
            if not self._still_ours(row):
                return []
            try:
                applied = self._statuspage.deliver(row, incident, self._matrix())
            except SendFailed as exc:
                self._failures.failed(row, exc, now)
                return []
            if isinstance(applied, str):
                self._outbox.mark_skipped(row, reason=applied, at=now)
                self._on_event("skipped", {"key": row.key, "reason": applied})
                return []
            called_at = None if applied.reconciled else now
        finally:
            self._pace.done(STATUSPAGE, posted_at=called_at)
        at = self._clock.now()
        return [Sent(row, STATUSPAGE, applied.statuspage_id, at, reconciled=applied.reconciled)]

    def _post(self, row: Claimed, post: Post, now: datetime) -> tuple[str | None, bool]:
        """Send (or find) the post; (None, False) when it was not sent (recorded as failed, or
        the claim was lost)."""
        if not self._still_ours(row):
            self._folder.give_back(post, now, ambiguous=False, reason="")
            return None, False
        asked = self._asking[threading.get_ident()] = time.perf_counter()
        try:
            found = self._sender.send(row, post, now)
            self._window.answered(time.perf_counter() - asked)
            return found
        except SendFailed as exc:
            self._failures.failed(row, exc, now, incident=post.incident, target=post.target)
            ambiguous = isinstance(exc, Transient) and exc.ambiguous
            self._folder.give_back(post, now, ambiguous=ambiguous, reason=exc.reason)
            return None, False
        finally:
            del self._asking[threading.get_ident()]

    def _stuck(self) -> int:
        """Senders waiting on Slack for longer than STUCK_S."""
        since = time.perf_counter() - STUCK_S
        return sum(1 for asked in list(self._asking.values()) if asked < since)

    def _still_ours(self, row: Claimed) -> bool:
        """Renew a claim older than half its lease before posting, so that a long batch never
        lets a second dispatcher take over a row this one is about to post (deploy overlap)."""
        now = self._clock.now()
        if row.claimed_at is not None and timedelta(0) <= now - row.claimed_at < LEASE / 2:
            return True
        return self._outbox.renew(row, at=now)


def _cpu_s() -> float:
    """CPU seconds this process has used (every thread, user and system)."""
    times = os.times()
    return times.user + times.system
