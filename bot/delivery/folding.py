"""Backlog folding: when executive notices queue up on their channel (a storm of SEV-1s, a
restart after an outage), what is waiting goes out as one digest post linking each incident's
card, instead of one post a second for minutes.

A digest carries every folded row's key in its metadata (`keys`), so a digest whose send may
have landed is found in Slack for each of its rows; each row is recorded on its own, and a row
that is ambiguous itself is never folded (it is looked up alone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.delivery.routing import Post, Router
from bot.render.incident import DigestEntry, ExecutiveDigest
from bot.slackapi.gateway import metadata
from matrix_engine.incidents import Incident
from matrix_engine.models import Matrix
from matrix_engine.timeline import Route, Verdict, decide, next_occurrence
from storage.db import StorageError
from storage.incidents import Incidents
from storage.outbox import AMBIGUOUS, Claimed, Outbox

log = logging.getLogger("bot.delivery")

FOLD_AT = 4  # rows waiting behind the one being sent before they are folded with it
FOLD_MAX = 400  # rows claimed for one digest at most; those that do not fit go back
DIGEST_TEXT_MAX = 11_000  # characters of block text in one digest (Slack rejects long ones)
GIVE_BACK_AFTER = timedelta(seconds=1)


class Folder:
    def __init__(
        self,
        *,
        outbox: Outbox,
        incidents: Incidents,
        router: Router,
        matrix: Callable[[], Matrix],
        on_event: Callable[[str, dict[str, object]], None],
    ) -> None:
        self._outbox = outbox
        self._incidents = incidents
        self._router = router
        self._matrix = matrix
        self._on_event = on_event

    def fold(self, row: Claimed, post: Post, now: datetime) -> Post:
        """`post`, or a digest of it and the notices waiting behind it on the same channel."""
        head = post.incident
        if row.message.route is not Route.EXECUTIVE or row.ambiguous or head is None:
            return post
        waiting = self._outbox.fold(row, now=now, least=FOLD_AT, limit=FOLD_MAX)
        if not waiting:
            return post
        digest = ExecutiveDigest(limit=DIGEST_TEXT_MAX)
        digest.add(DigestEntry(head, self._router.card_link(head), row.message.kind))
        folded: list[Claimed] = []
        for other in waiting:
            try:
                incident = self._foldable(other, head, now)
            except StorageError:
                raise
            except Exception:  # e.g. an unreadable incident: sent on its own, in its boundary
                log.warning("not folding %s", other.key, exc_info=True)
                self._outbox.release(other, at=now, now=now)
                continue
            if incident is None:
                continue
            # Never one Slack call per folded incident: linked only when the link can be made.
            link = self._router.card_link(incident, ask_slack=False)
            entry = DigestEntry(incident, link, other.message.kind)
            if not digest.add(entry):
                self._outbox.release(other, at=now, now=now)  # the next digest takes it
                continue
            folded.append(other)
        if not folded:
            return post
        calendar = self._matrix().calendar
        keys = [row.key, *(r.key for r in folded)]
        meta = metadata(
            "executive_digest",
            {"key": row.key, "keys": keys, "incident_id": head.ref, "drill": head.drill},
        )
        self._on_event("folded", {"key": row.key, "rows": len(keys)})
        return Post(
            post.target,
            lambda _at: digest.message(),
            meta,
            head.declared_at,
            incident=head,
            follow_up=post.follow_up,
            folded=tuple((r, next_occurrence(r.message, calendar=calendar)) for r in folded),
        )

    def _foldable(self, row: Claimed, head: Incident, now: datetime) -> Incident | None:
        """The row's incident when it goes in the digest; otherwise the row is recorded as
        skipped or handed back here."""
        if row.incident_id is None:
            self._outbox.release(row, at=now, now=now)
            return None
        incident = self._incidents.get(row.incident_id)
        decision = decide(row.message, incident.state(), now=now, calendar=self._matrix().calendar)
        if decision.verdict is Verdict.MOVE and decision.due_at is not None:
            self._outbox.reschedule(row, due_at=decision.due_at, now=now)
            return None
        if decision.verdict is Verdict.SKIP:
            self._outbox.mark_skipped(row, reason=decision.reason, at=now)
            self._on_event("skipped", {"key": row.key, "reason": decision.reason})
            return None
        if decision.verdict is Verdict.WAIT and not row.came_due:
            self._outbox.release(row, at=row.message.due_at, now=now)
            return None
        if incident.drill != head.drill:  # drills go to their own channel
            self._outbox.release(row, at=now, now=now)
            return None
        return incident

    def give_back(self, post: Post, now: datetime, *, ambiguous: bool, reason: str) -> None:
        """The digest was not sent: its folded rows are due again shortly (each looked up in
        Slack first when the digest may have landed)."""
        error = (AMBIGUOUS + reason) if ambiguous else None
        for row, _ in post.folded:
            self._outbox.release(row, at=now + GIVE_BACK_AFTER, now=now, error=error)
