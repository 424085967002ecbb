"""Atlassian Statuspage (REST API v1): the incident customers see on the status page (docs/design.md §11).

The first published update of a customer-facing incident creates a Statuspage incident (`POST
/pages/{page_id}/incidents`); later updates change it (`PATCH /pages/{page_id}/incidents/{id}`);
mitigation moves it to `monitoring`, resolution to `resolved`. Every call is an outbox row, sent by
the dispatcher like a Slack post, so a failure is retried (429 after `Retry-After`, 5xx and
timeouts with backoff) and, once given up on, goes `dead` with an admin alert.

Exactly once without an idempotency key (Statuspage has none):
- the Statuspage incident id is stored as soon as Statuspage answers, with the key of the outbox
  row that was applied; a row retried after a crash after that point is recorded, not re-sent;
- a create that may have gone through (a timeout, a 5xx, a crash while in flight) is looked for
  among the page's unresolved incidents before it is sent again: ours carry
  `metadata: {"sla_bot": {"incident": "INC-12"}}` (and the same name and body);
- a PATCH that may have gone through is looked for in the incident's own updates (the latest one
  has the same status and body).

Errors are `bot.slackapi.gateway`'s: RateLimited (429, or 420 as Statuspage also uses), Transient (5xx,
timeouts, connection errors; all may have been applied), Permanent (any other 4xx: a wrong key,
page or component id; never retried).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any
from urllib.parse import quote, urlencode

from bot.slackapi.gateway import Permanent, RateLimited, SendFailed, Transient, retry_after_seconds
from matrix_engine.customer_updates import (
    MONITORING_BODY,
    RESOLVED_BODY,
    Phase,
    component_status,
    public_body,
    public_title,
)
from matrix_engine.incidents import Incident
from matrix_engine.models import Matrix
from matrix_engine.timeline import MessageKind
from storage.outbox import Claimed
from storage.publications import Publications, StatuspageLink, StatuspageLinks

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.statuspage.io/v1"
MARKER = "sla_bot"  # the metadata object that names the incident a Statuspage incident is for


class StatuspageClient:
    """The few Statuspage calls the bot makes, over urllib, with `Authorization: OAuth <key>`."""

    def __init__(self, *, api_url: str, page_id: str, api_key: str, timeout: float) -> None:
        self.page_id = page_id
        self._base = api_url.rstrip("/")
        self._key = api_key
        self._timeout = timeout

    def _path(self, suffix: str = "") -> str:
        return f"/pages/{quote(self.page_id, safe='')}/incidents{suffix}"

    def create(self, incident: dict[str, Any]) -> dict[str, Any]:
        return self._dict(self._call("POST", self._path(), {"incident": incident}))

    def update(self, statuspage_id: str, incident: dict[str, Any]) -> dict[str, Any]:
        path = self._path(f"/{quote(statuspage_id, safe='')}")
        return self._dict(self._call("PATCH", path, {"incident": incident}))

    def get(self, statuspage_id: str) -> dict[str, Any]:
        return self._dict(self._call("GET", self._path(f"/{quote(statuspage_id, safe='')}")))

    def unresolved(self) -> list[dict[str, Any]]:
        return self._list(self._call("GET", self._path("/unresolved")))

    def search(self, text: str) -> list[dict[str, Any]]:
        """Recent incidents matching `text` (Statuspage's `q`), resolved ones included."""
        query = urlencode({"q": text, "limit": 100})
        return self._list(self._call("GET", self._path(f"?{query}")))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        what = f"statuspage {method} {path.split('?')[0]}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("Authorization", f"OAuth {self._key}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _classify(what, exc) from exc
        except TimeoutError as exc:
            raise Transient(what, "timed out", ambiguous=True) from exc
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            # A refused connection reached nothing, but it is counted as an attempt all the
            # same: Statuspage being down must end in an admin alert, not retry forever.
            raise Transient(what, f"connection failed: {exc}", ambiguous=True) from exc
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise Transient(what, "answer is not JSON", ambiguous=True) from exc

    @staticmethod
    def _dict(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise Transient("statuspage", "answer without an incident id", ambiguous=True)
        return value

    @staticmethod
    def _list(value: Any) -> list[dict[str, Any]]:
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _classify(what: str, exc: urllib.error.HTTPError) -> SendFailed:
    status = exc.code
    if status in (420, 429):
        return RateLimited(what, retry_after_seconds(exc.headers.get("Retry-After"), now=_now()))
    if status >= 500:
        return Transient(what, f"HTTP {status}", ambiguous=True)
    detail = ""
    try:
        answer = json.loads(exc.read() or b"null")
        if isinstance(answer, dict):
            detail = str(answer.get("error") or answer.get("message") or "")[:200]
    except (ValueError, OSError):
        pass
    return Permanent(what, f"HTTP {status}" + (f": {detail}" if detail else ""))


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- what is sent
def incident_fields(
    *,
    matrix: Matrix,
    incident: Incident,
    status: Phase,
    body: str,
    notify: bool,
    create: bool,
) -> dict[str, Any]:
    """The `incident` object of a create or PATCH: status, body, the impact and components the
    matrix maps the incident type to, and (on create) the name and our metadata marker."""
    how = matrix.publishing_for(incident.row)
    fields: dict[str, Any] = {
        "status": status.value,
        "body": body,
        "deliver_notifications": notify,
    }
    if how.impact is not None:
        fields["impact_override"] = how.impact.value
    if how.components:
        fields["component_ids"] = list(how.components)
        shown = component_status(how.impact, status)
        fields["components"] = {component: shown for component in how.components}
    if create:
        fields["name"] = public_title(matrix, incident.row)
        fields["metadata"] = {MARKER: {"incident": incident.ref}}
    return fields


@dataclass(frozen=True)
class Applied:
    """The row is on the status page: `statuspage_id` is the incident there; `reconciled` when
    it was found there rather than sent now."""

    statuspage_id: str
    reconciled: bool = False


class StatuspageSender:
    """Applies one Statuspage outbox row: create, PATCH, or nothing (a reason to skip it)."""

    def __init__(
        self,
        *,
        client: StatuspageClient,
        links: StatuspageLinks,
        publications: Publications,
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._links = links
        self._publications = publications
        self._now = clock

    def deliver(self, row: Claimed, incident: Incident, matrix: Matrix) -> Applied | str:
        """Apply `row` to the status page; a string is why nothing was to be done."""
        if incident.drill:
            return "drills never reach the status page"
        page = self._client.page_id
        link = self._links.get(incident.id, page_id=page)
        if link is not None and link.last_key == row.key:
            return Applied(link.statuspage_id, reconciled=True)  # applied before a crash
        wanted = self._wanted(row, incident, matrix, link)
        if isinstance(wanted, str):
            return wanted
        status, body, notify = wanted
        if link is None:
            return self._create(row, incident, matrix, status=status, body=body, notify=notify)
        fields = incident_fields(
            matrix=matrix, incident=incident, status=status, body=body, notify=notify, create=False
        )
        if row.ambiguous and self._already_patched(link, status=status, body=body):
            self._record(row, incident, link.statuspage_id, status)
            return Applied(link.statuspage_id, reconciled=True)
        answer = self._client.update(link.statuspage_id, fields)
        self._record(row, incident, str(answer["id"]), status)
        return Applied(str(answer["id"]))

    def _wanted(
        self, row: Claimed, incident: Incident, matrix: Matrix, link: StatuspageLink | None
    ) -> tuple[Phase, str, bool] | str:
        kind = row.message.kind
        if kind is MessageKind.STATUSPAGE_UPDATE:
            update = self._publications.get(int(row.payload["update_id"]))
            return update.draft.phase, public_body(update.draft), update.draft.notify
        target = Phase.MONITORING if kind is MessageKind.STATUSPAGE_MONITORING else Phase.RESOLVED
        if link is None:
            return f"no status page incident to move to {target.value}"
        if Phase(link.status).rank >= target.rank:
            return f"the status page incident is already {link.status}"
        return target, MONITORING_BODY if target is Phase.MONITORING else RESOLVED_BODY, True

    def _create(
        self,
        row: Claimed,
        incident: Incident,
        matrix: Matrix,
        *,
        status: Phase,
        body: str,
        notify: bool,
    ) -> Applied:
        fields = incident_fields(
            matrix=matrix, incident=incident, status=status, body=body, notify=notify, create=True
        )
        if row.ambiguous:
            found = self._find_created(incident, fields)
            if found is not None:
                log.info("%s: Statuspage incident %s found, not created again", row.key, found)
                self._record(row, incident, found, status)
                return Applied(found, reconciled=True)
        answer = self._client.create(fields)
        self._record(row, incident, str(answer["id"]), status)
        return Applied(str(answer["id"]))

    def _find_created(self, incident: Incident, fields: dict[str, Any]) -> str | None:
        """Our incident among the page's unresolved ones (resolved ones too, if the create
        asked for `resolved`): by our metadata marker, else by its name and body."""
        candidates = self._client.unresolved()
        if fields["status"] == Phase.RESOLVED.value:
            candidates += self._client.search(str(fields["name"]))
        for found in candidates:
            if _ours(found, incident_ref=incident.ref, name=fields["name"], body=fields["body"]):
                return str(found["id"])
        return None

    def _already_patched(self, link: StatuspageLink, *, status: Phase, body: str) -> bool:
        updates = self._client.get(link.statuspage_id).get("incident_updates") or []
        latest = max(
            (u for u in updates if isinstance(u, dict)),
            key=lambda u: str(u.get("created_at") or ""),
            default=None,
        )
        return (
            latest is not None
            and latest.get("status") == status.value
            and latest.get("body") == body
        )

    def _record(self, row: Claimed, incident: Incident, statuspage_id: str, status: Phase) -> None:
        self._links.record(
            incident.id,
            page_id=self._client.page_id,
            statuspage_id=statuspage_id,
            status=status.value,
            key=row.key,
            at=self._now(),
        )


def _ours(found: dict[str, Any], *, incident_ref: str, name: object, body: object) -> bool:
    marker = (found.get("metadata") or {}).get(MARKER) or {}
    if isinstance(marker, dict) and marker.get("incident") == incident_ref:
        return True
    bodies = [u.get("body") for u in found.get("incident_updates") or [] if isinstance(u, dict)]
    return found.get("name") == name and body in bodies
