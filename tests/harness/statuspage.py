"""A fake of Atlassian Statuspage's REST API v1 on loopback, faithful to its documented behaviour
for the calls the bot makes, recording every request (method, path, query, headers, body).

- Authentication: `Authorization: OAuth <key>` (or `?api_key=<key>`); anything else is 401
  `{"error": "Couldn't authenticate you"}`. An unknown page is 404 `{"error": "Record not found"}`.
- `POST /pages/{page_id}/incidents` with `{"incident": {...}}`: `name` is required; `status` is
  investigating (default), identified, monitoring or resolved; `body` becomes the first incident
  update; `impact_override` is none, minor, major or critical; `component_ids` and `components`
  (`{id: status}`) must name the page's components (else 422); `metadata` values must be
  objects; `deliver_notifications` is recorded on the update. Answers 201 with the incident.
- `PATCH /pages/{page_id}/incidents/{incident_id}`: changes what it names; a `body` or a new
  `status` adds an incident update. Moving to monitoring / resolved stamps `monitoring_at` /
  `resolved_at` (and resolved sets every affected component operational). 200 with the incident.
- `GET /pages/{page_id}/incidents/unresolved` (not resolved, newest first), `GET
  /pages/{page_id}/incidents?q=&limit=&page=` (all, newest first, `q` matched against name and
  update bodies), `GET /pages/{page_id}/incidents/{incident_id}`.
- Incidents are returned as Statuspage does: `id`, `name`, `status`, `impact`,
  `impact_override`, `created_at`, `updated_at`, `monitoring_at`, `resolved_at`, `shortlink`,
  `page_id`, `incident_updates` (newest first, each with `id`, `incident_id`, `status`, `body`,
  `created_at`, `display_at`, `deliver_notifications`, `affected_components`), `components`,
  `metadata`.

Faults: `fail(status, times=…)` answers 420/429 (with `Retry-After` if given) or 5xx without
acting; `hold(method)` acts, then holds the answer until `release()` (a client timeout, or a
process killed between Statuspage acting and hearing back); `answer_after` seconds delays every
answer after acting (a slow Statuspage, so kills at random moments catch calls in flight).
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox.fakeslack import PATIENCE_S

API_KEY = "statuspage-test-key-5d1c9a"
PAGE_ID = "kctbh9vrtdwd"
STATUSES = ("investigating", "identified", "monitoring", "resolved")
IMPACTS = ("none", "minor", "major", "critical")
COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """One request as it reached the fake."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int  # what the fake answered


@dataclass
class _Fault:
    method: str | None
    status: int
    times: int | None
    retry_after: str | None
    fired: int = 0


@dataclass
class _Incident:
    id: str
    name: str
    status: str
    impact_override: str | None
    component_ids: list[str]
    metadata: JsonDict
    created_at: str
    updated_at: str
    monitoring_at: str | None = None
    resolved_at: str | None = None
    updates: list[JsonDict] = field(default_factory=list)  # oldest first


class FakeStatuspage:
    """Statuspage's API on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        page_id: str = PAGE_ID,
        components: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
    ) -> None:
        self.api_key = api_key
        self.page_id = page_id
        self.components: dict[str, JsonDict] = {
            cid: {"id": cid, "name": name, "status": "operational"}
            for cid, name in (components or {}).items()
        }
        self._clock = clock
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._incidents: dict[str, _Incident] = {}
        self._requests: list[Recorded] = []
        self._faults: list[_Fault] = []
        self._held_method: str | None = None
        self._held_times: int = 0
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.answer_after = 0.0

    # ---------------------------------------------------------------- life cycle
    def start(self) -> FakeStatuspage:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_PATCH(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = fake._dispatch(
                    self.command, self.path, dict(self.headers.items()), raw
                )
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (or was killed) after Statuspage had acted

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-statuspage", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeStatuspage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def settings(self) -> dict[str, Any]:
        """The bot's settings pointing at this fake."""
        return {
            "STATUSPAGE_API_KEY": self.api_key,
            "STATUSPAGE_PAGE_ID": self.page_id,
            "STATUSPAGE_API_URL": self.url,
        }

    # ---------------------------------------------------------------- faults
    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        times: int | None = 1,
        retry_after: str | None = None,
    ) -> None:
        """Answer `status` (420/429 rate limits, 5xx) without acting, `times` times."""
        with self._lock:
            self._faults.append(_Fault(method, status, times, retry_after))

    def hold(self, method: str = "POST", *, times: int = 1) -> None:
        """Act on the next `times` `method` requests, then hold each answer until `release`."""
        with self._lock:
            self._held_method, self._held_times = method, times
            self._release.clear()

    def release(self) -> None:
        self._release.set()

    # ---------------------------------------------------------------- reading
    def requests(self, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self._requests if method is None or r.method == method]

    def incidents(self) -> list[JsonDict]:
        """Every incident on the page, oldest first, as the API shows them."""
        with self._lock:
            return [self._json(i) for i in self._incidents.values()]

    def wait_for(
        self, predicate: Callable[[], bool], *, what: str, timeout: float = PATIENCE_S
    ) -> None:
        """Until `predicate()` holds (polled); AssertionError naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake Statuspage: no {what} within {timeout:.0f} s")
            time.sleep(0.02)

    # ---------------------------------------------------------------- serving
    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            status, answer, extra, hold = self._answer(method, parts.path, query, headers, body)
            self._requests.append(Recorded(method, parts.path, query, headers, body, status))
        if hold:
            self._release.wait(PATIENCE_S)
        elif self.answer_after > 0:
            self._stopping.wait(self.answer_after)
        return status, answer, extra

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str], bool]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth != f"OAuth {self.api_key}" and query.get("api_key") != [self.api_key]:
            return 401, {"error": "Couldn't authenticate you"}, {}, False
        fault = next(
            (
                f
                for f in self._faults
                if f.method in (None, method) and (f.times is None or f.fired < f.times)
            ),
            None,
        )
        if fault is not None:
            fault.fired += 1
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            words = "Rate limit exceeded" if fault.status in (420, 429) else "Internal error"
            return fault.status, {"error": words}, extra, False
        segments = [s for s in path.split("/") if s]
        if segments[:1] == ["v1"]:
            segments = segments[1:]
        if len(segments) < 3 or segments[0] != "pages" or segments[2] != "incidents":
            return 404, {"error": "Record not found"}, {}, False
        if segments[1] != self.page_id:
            return 404, {"error": "Record not found"}, {}, False
        rest = segments[3:]
        status, answer = self._route(method, rest, query, body)
        hold = self._held_method == method and self._held_times > 0 and status < 300
        if hold:
            self._held_times -= 1
        return status, answer, {}, hold

    def _route(
        self, method: str, rest: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if method == "POST" and not rest:
            return self._create(body)
        if method == "GET" and rest == ["unresolved"]:
            found = [i for i in self._incidents.values() if i.status != "resolved"]
            return 200, [self._json(i) for i in reversed(found)]
        if method == "GET" and not rest:
            return 200, self._search(query)
        incident = self._incidents.get(rest[0]) if len(rest) == 1 else None
        if incident is None:
            return 404, {"error": "Record not found"}
        if method == "GET":
            return 200, self._json(incident)
        if method == "PATCH":
            return self._patch(incident, body)
        return 405, {"error": "Method not allowed"}

    def _create(self, body: Any) -> tuple[int, Any]:
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict) or not fields.get("name"):
            return 422, {"error": ["Name can't be blank"]}
        problem = self._invalid(fields)
        if problem:
            return 422, {"error": [problem]}
        now = self._now()
        incident = _Incident(
            id=self._new_id(),
            name=str(fields["name"]),
            status=str(fields.get("status") or "investigating"),
            impact_override=fields.get("impact_override"),
            component_ids=[],
            metadata=dict(fields.get("metadata") or {}),
            created_at=now,
            updated_at=now,
        )
        self._incidents[incident.id] = incident
        self._apply(incident, fields, now, first=True)
        return 201, self._json(incident)

    def _patch(self, incident: _Incident, body: Any) -> tuple[int, Any]:
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return 422, {"error": ["incident is missing"]}
        problem = self._invalid(fields)
        if problem:
            return 422, {"error": [problem]}
        now = self._now()
        if fields.get("name"):
            incident.name = str(fields["name"])
        if "impact_override" in fields:
            incident.impact_override = fields["impact_override"]
        if isinstance(fields.get("metadata"), dict):
            incident.metadata |= fields["metadata"]
        self._apply(incident, fields, now, first=False)
        return 200, self._json(incident)

    def _invalid(self, fields: JsonDict) -> str | None:
        status = fields.get("status")
        if status is not None and status not in STATUSES:
            return f"Status {status!r} is not a valid realtime incident status"
        impact = fields.get("impact_override")
        if impact is not None and impact not in IMPACTS:
            return f"Impact override {impact!r} is not valid"
        ids = list(fields.get("component_ids") or []) + list(
            (fields.get("components") or {}).keys()
        )
        unknown = [c for c in ids if c not in self.components]
        if unknown:
            return f"Components {unknown} are not on this page"
        for value in (fields.get("components") or {}).values():
            if value not in COMPONENT_STATUSES:
                return f"Component status {value!r} is not valid"
        metadata = fields.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or not all(isinstance(v, dict) for v in metadata.values())
        ):
            return "Metadata top level values must be objects"
        return None

    def _apply(self, incident: _Incident, fields: JsonDict, now: str, *, first: bool) -> None:
        new_status = fields.get("status")
        changed = new_status is not None and new_status != incident.status
        if new_status is not None:
            incident.status = str(new_status)
        if incident.status == "monitoring" and incident.monitoring_at is None:
            incident.monitoring_at = now
        if incident.status == "resolved" and incident.resolved_at is None:
            incident.resolved_at = now
        for cid in fields.get("component_ids") or []:
            if cid not in incident.component_ids:
                incident.component_ids.append(cid)
        for cid, value in (fields.get("components") or {}).items():
            if cid not in incident.component_ids:
                incident.component_ids.append(cid)
            self.components[cid]["status"] = value
        if incident.status == "resolved":
            for cid in incident.component_ids:
                self.components[cid]["status"] = "operational"
        if first or changed or fields.get("body"):
            incident.updates.append(
                {
                    "id": self._new_id(),
                    "incident_id": incident.id,
                    "status": incident.status,
                    "body": str(fields.get("body") or ""),
                    "created_at": now,
                    "updated_at": now,
                    "display_at": now,
                    "deliver_notifications": bool(fields.get("deliver_notifications", True)),
                    "affected_components": [
                        {
                            "code": cid,
                            "name": self.components[cid]["name"],
                            "new_status": self.components[cid]["status"],
                        }
                        for cid in incident.component_ids
                    ],
                }
            )
        incident.updated_at = now

    def _search(self, query: dict[str, list[str]]) -> list[JsonDict]:
        text = (query.get("q") or [""])[0].lower()
        limit = int((query.get("limit") or ["100"])[0])
        found = [
            i
            for i in reversed(self._incidents.values())
            if text in i.name.lower() or any(text in u["body"].lower() for u in i.updates)
        ]
        return [self._json(i) for i in found[:limit]]

    def _json(self, incident: _Incident) -> JsonDict:
        impact = incident.impact_override or "none"
        return {
            "id": incident.id,
            "name": incident.name,
            "status": incident.status,
            "impact": impact,
            "impact_override": incident.impact_override,
            "created_at": incident.created_at,
            "updated_at": incident.updated_at,
            "monitoring_at": incident.monitoring_at,
            "resolved_at": incident.resolved_at,
            "shortlink": f"https://stspg.io/{incident.id[:6]}",
            "page_id": self.page_id,
            "incident_updates": [dict(u) for u in reversed(incident.updates)],
            "components": [dict(self.components[c]) for c in incident.component_ids],
            "metadata": json.loads(json.dumps(incident.metadata)),
        }

    def _new_id(self) -> str:
        return "".join(
            self._random.choice(string.ascii_lowercase + string.digits) for _ in range(12)
        )

    def _now(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds")
