"""Operating-rhythm use-cases behind the slash commands: coverage review on demand, drills,
follow-ups and re-baselining the matrix (docs/design.md §7)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot.clock import Clock
from bot.render.slack_text import plain_mentions
from bot.usecases.incidents import Actor, IncidentService
from bot.usecases.matrix_source import ActiveMatrix, MatrixSource, read_matrix_file
from bot.usecases.rhythm_calendar import Rhythm
from matrix_engine.diff import MatrixDiff, diff_matrices
from matrix_engine.drills import DrillProposal, propose_drills
from matrix_engine.followups import ArgsProblem, Followup, parse_followup_args
from matrix_engine.incidents import Incident
from matrix_engine.localtime import local_date, zone
from storage.followups import Drills, Followups, Meta
from storage.incidents import Declared, Incidents
from storage.versions import Versions, digest

# `#12` or `12`: ASCII digits (a number too large to exist is still a number).
_FOLLOWUP_ID = re.compile(r"#?0*([1-9][0-9]{0,39})")


class NotAdmin(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(f"Only admins (SLA_BOT_ADMINS) may {what}.")


class FollowupProblem(Exception):
    """A follow-up command that cannot be carried out; the message says what to type."""


# The newest re-baseline preview shown; only its Adopt button may adopt.
PREVIEW_KEY = "rebaseline_preview"


@dataclass(frozen=True)
class Candidate:
    """A matrix file compared with the active version (`next_version` - 1), waiting for an
    admin's confirmation; `preview` names this showing of it."""

    diff: MatrixDiff
    digest: str
    next_version: int
    preview: str = ""


class Operations:
    def __init__(
        self,
        *,
        matrix: MatrixSource,
        versions: Versions,
        matrix_path: Path,
        rhythm: Rhythm,
        followups: Followups,
        drills: Drills,
        incidents: Incidents,
        service: IncidentService,
        clock: Clock,
        admins: frozenset[str],
        wake: object,
        meta: Meta,
    ) -> None:
        self._matrix = matrix
        self._versions = versions
        self._path = matrix_path
        self._rhythm = rhythm
        self._followups = followups
        self._drills = drills
        self._incidents = incidents
        self._service = service
        self._clock = clock
        self._admins = admins
        self._wake = wake
        self._meta = meta

    def _poke(self) -> None:
        if callable(self._wake):
            self._wake()

    # ---- review and drills ---------------------------------------------------------------------

    def review_now(self, actor: Actor) -> str:
        self._rhythm.review_now(requested_by=actor.user_id, now=self._clock.now())
        self._poke()
        return self._matrix.active().matrix.channels.reviews

    def drill_proposal(self) -> DrillProposal:
        active = self._matrix.active().matrix
        now = self._clock.now()
        month = local_date(now, zone(active.calendar.timezone)).strftime("%Y-%m")
        return propose_drills(active, history=self._drills.history(), month=month)

    def start_drill(self, query: str, *, actor: Actor, trigger_id: str | None) -> Declared:
        result = self._service.declare(
            query=query, summary="Drill", actor=actor, trigger_id=trigger_id, drill=True
        )
        assert isinstance(result, Declared)  # drills never ask "already open?"
        return result

    # ---- follow-ups ----------------------------------------------------------------------------

    def add_followup(self, args: str, *, actor: Actor, trigger_id: str | None = None) -> Followup:
        now = self._clock.now()
        calendar = self._matrix.active().matrix.calendar
        parsed = parse_followup_args(
            plain_mentions(args), today=local_date(now, zone(calendar.timezone))
        )
        if isinstance(parsed, ArgsProblem):
            raise FollowupProblem(parsed.message)
        followup = Followup(
            incident_id=parsed.incident_id,
            action=parsed.action,
            owner=parsed.owner,
            eta=parsed.eta,
            needs_policy_update=parsed.needs_policy_update,
        )
        return self.record_followup(followup, actor=actor, trigger_id=trigger_id)

    def record_followup(
        self, followup: Followup, *, actor: Actor, trigger_id: str | None = None
    ) -> Followup:
        """Add a follow-up to an incident, if `actor` is one of its people (as for ack) or an
        admin; the same request delivered again (`trigger_id`) adds it once."""
        incident = self._service.find(followup.incident_ref, channel_id=actor.channel_id)
        self._service.authorise(incident, actor, "add follow-ups to it")
        now = self._clock.now()
        stored, created = self._followups.add_once(
            followup, by=actor.user_id, at=now, trigger_id=trigger_id
        )
        if created:
            self._rhythm.plan_followup(stored, now=now)
            self._poke()
        return stored

    def find_incident(self, ref: str, *, actor: Actor) -> Incident:
        """The incident a button names (NoSuchIncident, with the closest open ones, if none)."""
        return self._service.find(ref, channel_id=actor.channel_id)

    def done_followup(self, args: str, *, actor: Actor) -> Followup:
        """Mark a follow-up done, if `actor` is its owner, one of its incident's people (as for
        ack) or an admin."""
        match = _FOLLOWUP_ID.fullmatch(args.strip())
        if match is None:
            raise FollowupProblem(
                "Which follow-up? `followup done <followup-id>` (see `followup list`)."
            )
        followup = self._followups.get(int(match[1]))
        if followup is None or followup.is_done:
            raise FollowupProblem(f"No open follow-up #{match[1]}.")
        if actor.user_id != followup.owner:
            incident = self._incidents.get(followup.incident_id)
            self._service.authorise(
                incident,
                actor,
                f"mark follow-up #{followup.id} done",
                also="its owner, ",
            )
        done = self._followups.done(int(match[1]), by=actor.user_id, at=self._clock.now())
        if done is None:
            raise FollowupProblem(f"No open follow-up #{match[1]}.")
        return done

    def open_followups(self) -> list[Followup]:
        return self._followups.open()

    # ---- re-baseline ---------------------------------------------------------------------------

    def candidate(self, actor: Actor) -> Candidate:
        """The matrix file on disk compared with the active version, target by target. Showing it
        makes it the newest preview: the Adopt of any earlier one no longer works."""
        self._require_admin(actor, "re-baseline the matrix")
        text, matrix = read_matrix_file(self._path)
        active = self._matrix.active()
        preview = secrets.token_hex(8)
        self._meta.set(PREVIEW_KEY, preview)
        return Candidate(
            diff_matrices(active.matrix, matrix), digest(text), active.version + 1, preview
        )

    def adopt(
        self, *, actor: Actor, expected_digest: str, reason: str, preview: str, next_version: int
    ) -> ActiveMatrix:
        """Make the file the active version, if this is still the newest preview, nothing was
        adopted since it was shown, and the file is still the one the admin reviewed."""
        self._require_admin(actor, "re-baseline the matrix")
        current = self._matrix.active().version
        if current + 1 != next_version:
            raise FollowupProblem(
                f"Version {current} was adopted after this preview was shown; run `rebaseline` "
                "again to compare the file with it."
            )
        if not preview or self._meta.get(PREVIEW_KEY) != preview:
            raise FollowupProblem(
                "A newer re-baseline preview was shown after this one; adopt from the newest, or "
                "run `rebaseline` again."
            )
        text, matrix = read_matrix_file(self._path)
        if digest(text) != expected_digest:
            raise FollowupProblem(
                "The matrix file changed since this diff was shown; run `rebaseline` again."
            )
        version = self._versions.adopt(
            text=text, by=actor.user_id, reason=reason, source=str(self._path), at=self._clock.now()
        )
        active = ActiveMatrix(matrix, version.version, text)
        self._matrix.set_active(active)
        return active

    def _require_admin(self, actor: Actor, what: str) -> None:
        if actor.user_id not in self._admins:
            raise NotAdmin(what)
