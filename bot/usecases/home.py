"""Publishing the App Home: when a user opens it, and again when incidents change state.

Opening the tab (`app_home_opened`) records the user as a recent viewer and publishes their view
in the background executor, after Bolt has acknowledged the event. When an incident changes state
every user who opened the tab within `RECENT` gets a fresh view; refreshes requested while one is
already queued are merged into it, so a burst of changes costs one round of `views.publish`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import timedelta
from typing import Any, Final

from bot.clock import Clock
from bot.render.home import HomeData, render_home
from bot.render.slack_text import card_links
from bot.slackapi.views import HomeViews
from bot.usecases.matrix_source import MatrixSource
from bot.usecases.reports import Reports
from matrix_engine.followups import is_overdue
from matrix_engine.rhythm import RhythmSlot, SlotKind, next_slots
from storage.reporting import Reporting

log = logging.getLogger(__name__)

RECENT: Final = timedelta(hours=1)
MAX_VIEWERS: Final = 1_000
# Enough slots to reach the next drill: a month holds at most five weekly reviews.
UPCOMING_SLOTS: Final = 8


class HomeTab:
    """Builds and publishes App Home views; knows who looked recently (in memory)."""

    def __init__(
        self,
        *,
        reporting: Reporting,
        reports: Reports,
        matrix: MatrixSource,
        views: HomeViews,
        clock: Clock,
        background: Executor,
        command: str = "/escalate",
    ) -> None:
        self._reporting = reporting
        self._reports = reports
        self._matrix = matrix
        self._views = views
        self._clock = clock
        self._background = background
        self._command = command
        self._viewers: dict[str, float] = {}  # user → monotonic time of their last open
        self._lock = threading.Lock()
        self._refresh_queued = False

    def view(self) -> dict[str, Any]:
        """The home view as of now, as the dict `views.publish` takes."""
        active = self._matrix.active()
        now = self._clock.now()
        calendar = active.matrix.calendar
        data = HomeData(
            matrix=active.matrix,
            version=active.version,
            open_incidents=self._reporting.facts_of(
                self._reporting.open_incidents(),
                link_of=card_links(self._reporting.workspace_url()),
            ),
            upcoming=_first_of_each_kind(next_slots(active.matrix, now=now, count=UPCOMING_SLOTS)),
            overdue_followups=[
                f
                for f in self._reporting.open_followups()
                if is_overdue(f, now=now, calendar=calendar)
            ],
            month=self._reports.this_month(now=now),
            now=now,
            command=self._command,
        )
        view: dict[str, Any] = render_home(data).to_dict()
        return view

    def opened(self, user_id: str) -> Future[None]:
        """`user_id` opened the tab: remember them and publish their view in the background."""
        now = time.monotonic()
        with self._lock:
            self._viewers.pop(user_id, None)
            self._viewers[user_id] = now
            while len(self._viewers) > MAX_VIEWERS:
                del self._viewers[next(iter(self._viewers))]
        return self._submit(lambda: self.publish(user_id))

    def recent_viewers(self) -> list[str]:
        cutoff = time.monotonic() - RECENT.total_seconds()
        with self._lock:
            for user in [u for u, at in self._viewers.items() if at < cutoff]:
                del self._viewers[user]
            return list(self._viewers)

    def changed(self, *_: object) -> None:
        """Incidents changed: refresh every recent viewer's tab (one queued refresh at most)."""
        with self._lock:
            if self._refresh_queued or not self._viewers:
                return
            self._refresh_queued = True
        self._submit(self._refresh)

    def _refresh(self) -> None:
        with self._lock:
            self._refresh_queued = False
        viewers = self.recent_viewers()
        if not viewers:
            return
        view = self.view()
        for user in viewers:
            self._publish(user, view)

    def publish(self, user_id: str) -> None:
        self._publish(user_id, self.view())

    def _publish(self, user_id: str, view: dict[str, Any]) -> None:
        self._views.publish(user_id, view)

    def _submit(self, fn: Callable[[], None]) -> Future[None]:
        future: Future[None] = self._background.submit(fn)
        future.add_done_callback(_log_failure)
        return future


def _first_of_each_kind(slots: list[RhythmSlot]) -> list[RhythmSlot]:
    """The next review and the next drill, in time order."""
    first: dict[SlotKind, RhythmSlot] = {}
    for slot in slots:
        first.setdefault(slot.kind, slot)
    return sorted(first.values())


def _log_failure(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("App Home publishing failed", exc_info=exc)
