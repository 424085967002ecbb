"""The composition root: settings → storage → matrix → Slack clients → dispatcher → Bolt app.

Everything the bot is made of is built here and nowhere else, so tests and the sandbox build the
very same object graph with a different Slack URL or clock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware import Middleware
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.clock import Clock, make_clock
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.leader import LEADER, STANDBY, LeadershipMetrics, make_leadership
from bot.delivery.routing import Composed
from bot.delivery.scheduler import Ticker
from bot.delivery.statuspage import StatuspageClient, StatuspageSender
from bot.delivery.update_posts import UpdatePosts
from bot.inbound.alert_http import GRAFANA_DEFAULT_HEADER, AlertDoor, GrafanaSigning
from bot.inbound.answers import Answers
from bot.inbound.http import SlackHttpApp
from bot.inbound.limits import RateLimiter
from bot.inbound.listeners import register, register_fallbacks, register_home
from bot.inbound.rhythm_listeners import register_rhythm
from bot.render.alerts import render_unrouted
from bot.render.blocks import render_notice
from bot.settings import Settings
from bot.slackapi.directory import PostingCheck, UsergroupDirectory
from bot.slackapi.gateway import SlackGateway
from bot.slackapi.keepalive import KeepAliveWebClient
from bot.slackapi.views import HomeViews
from bot.slackapi.workspace import WorkspaceReader
from bot.telemetry import Telemetry
from bot.usecases.alert_intake import AlertIntake
from bot.usecases.home import HomeTab
from bot.usecases.incidents import IncidentService
from bot.usecases.matrix_source import MatrixSource
from bot.usecases.publishing import CustomerUpdates
from bot.usecases.reports import Reports
from bot.usecases.rhythm_actions import Operations
from bot.usecases.rhythm_calendar import Rhythm
from matrix_engine.incidents import Incident
from matrix_engine.timeline import MessageKind
from storage.alerts import AlertLedger
from storage.backend import Storage, StorageError, open_storage
from storage.followups import Drills, Followups, Meta
from storage.incidents import Incidents
from storage.outbox import Claimed, Outbox
from storage.publications import Publications, StatuspageLinks
from storage.reporting import Reporting
from storage.requests import SeenRequests
from storage.versions import Versions

log = logging.getLogger(__name__)

SLACK_TIMEOUT_S = 10
IDENTIFY_EVERY_S = 30.0
DEAD_WINDOW = timedelta(minutes=15)  # how long a dead post keeps /healthz at 503
FORGET_EVERY = timedelta(hours=1)  # how often the tick prunes seen_requests (kept a day)
# Report verdicts are settled hourly, the first time a minute after start-up (after the catch-up).
SETTLE_EVERY, SETTLE_FIRST = timedelta(hours=1), timedelta(minutes=1)


@dataclass
class Identity:
    team_id: str | None = None
    bot_user_id: str | None = None
    bot_id: str | None = None


def interactive_client(settings: Settings) -> WebClient:
    """For listeners: slack_sdk retries connection errors, 429 (Retry-After) and 5xx itself."""
    return WebClient(
        token=_secret(settings.SLACK_BOT_TOKEN),
        base_url=settings.SLACK_API_URL,
        timeout=SLACK_TIMEOUT_S,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def directory_client(settings: Settings, *, keep_alive: bool = True) -> WebClient:
    """For lookups in front of an ack: a short timeout and no retries, over a connection each
    request thread keeps open (a new one per lookup cost a declaration ~3 ms); `keep_alive`
    False for a client made for one call."""
    kind = KeepAliveWebClient if keep_alive else WebClient
    client = kind(
        token=_secret(settings.SLACK_BOT_TOKEN), base_url=settings.SLACK_API_URL, timeout=2
    )
    client.retry_handlers = []
    return client


def delivery_client(settings: Settings) -> WebClient:
    """For the dispatcher: no retry handlers — the outbox retries, reconciling ambiguous sends.
    Each sender thread keeps its connection to Slack open between posts."""
    client = KeepAliveWebClient(
        token=_secret(settings.SLACK_BOT_TOKEN),
        base_url=settings.SLACK_API_URL,
        timeout=settings.SLA_BOT_SLACK_TIMEOUT,  # type: ignore[arg-type]  # urllib takes float
    )
    client.retry_handlers = []
    return client


class _Gate(Middleware):
    """Before any listener: a request from another workspace is refused (signed with our secret
    is not enough: an org-wide or shared app can receive requests from other workspaces), and a
    Socket Mode envelope redelivered with the same event_id is answered once (HTTP requests are
    deduplicated in bot.http)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        runtime = self._runtime
        if req.context.team_id is None or req.context.team_id != runtime.workspace():
            return runtime.refuse_workspace(req)
        event_id = req.body.get("event_id") if req.mode == "socket_mode" else None
        if event_id and not runtime.seen.first_time(f"event:{event_id}", at=runtime.clock.now()):
            return BoltResponse(status=200, body="")
        return next()


class _TokenComesFromAuthorize(logging.Filter):
    """Bolt warns "As you gave `client` as well, `token` will be unused" whenever SLACK_BOT_TOKEN
    is in the environment and a client is given. Ours is: the token comes from `authorize`, so
    that warning says nothing an operator can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _quiet_bolt_token_warning() -> None:
    bolt_logger = logging.getLogger(f"slack_bolt.{App.__name__}")
    if not any(isinstance(f, _TokenComesFromAuthorize) for f in bolt_logger.filters):
        bolt_logger.addFilter(_TokenComesFromAuthorize())


def grafana_signing(settings: Settings) -> GrafanaSigning | None:
    """Grafana's HMAC check, when SLA_BOT_GRAFANA_SECRET is set. With the header name left at
    its default, Grafana's own default name is accepted too."""
    secret = _secret(settings.SLA_BOT_GRAFANA_SECRET)
    if secret is None:
        return None
    header = settings.SLA_BOT_GRAFANA_SIGNATURE_HEADER
    default = Settings.model_fields["SLA_BOT_GRAFANA_SIGNATURE_HEADER"].default
    return GrafanaSigning(
        secret=secret,
        header=header,
        timestamp_header=settings.SLA_BOT_GRAFANA_TIMESTAMP_HEADER,
        also_header=GRAFANA_DEFAULT_HEADER if header == default else None,
    )


def statuspage_sender(
    settings: Settings, *, publications: Publications, store: Storage, clock: Clock
) -> StatuspageSender | None:
    """Statuspage, when STATUSPAGE_API_KEY and STATUSPAGE_PAGE_ID are set; else None."""
    key, page = _secret(settings.STATUSPAGE_API_KEY), settings.STATUSPAGE_PAGE_ID
    if key is None or page is None:
        return None
    client = StatuspageClient(
        api_url=settings.STATUSPAGE_API_URL,
        page_id=page,
        api_key=key,
        timeout=settings.STATUSPAGE_TIMEOUT,
    )
    return StatuspageSender(
        client=client, links=StatuspageLinks(store), publications=publications, clock=clock.now
    )


def _secret(value: object) -> str | None:
    return None if value is None else value.get_secret_value()  # type: ignore[attr-defined]


class Runtime:
    """The running bot: one of these per process."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        singleton: bool = True,
        scratch: bool = False,
    ) -> None:
        """`scratch`: the database is a throwaway made for this run (the sandbox), so its being
        new is no news."""
        self.settings = settings
        self.clock = clock or make_clock(settings)
        self.store = open_storage(settings.SLA_BOT_DB, warn_if_new=not scratch)
        self.incidents = Incidents(self.store)
        self.outbox = Outbox(self.store)
        self.seen = SeenRequests(self.store)
        self._forgotten_at: datetime | None = None
        self.versions = Versions(self.store)
        self.matrix = MatrixSource(
            versions=self.versions, path=settings.SLA_BOT_MATRIX, clock=self.clock
        )
        self.matrix.load()
        self.identity = Identity()
        self._identify_lock = threading.Lock()
        self._identify_after = 0.0
        self.client = interactive_client(settings)
        self.gateway = SlackGateway(delivery_client(settings))
        self.background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-bg")
        self.reporting = Reporting(self.store)
        self.reports = Reports(
            reporting=self.reporting,
            matrix=lambda: self.matrix.active().matrix,
            clock=self.clock.now,
        )
        self.telemetry = Telemetry(reporting=self.reporting, tick_age=self._tick_age)
        self.home = HomeTab(
            reporting=self.reporting,
            reports=self.reports,
            matrix=self.matrix,
            views=HomeViews(self.client, on_api_error=self.telemetry.api_error),
            clock=self.clock,
            background=self.background,
            command=settings.SLA_BOT_COMMAND,
        )
        self.publications = Publications(self.store)
        self.statuspage = statuspage_sender(
            settings, publications=self.publications, store=self.store, clock=self.clock
        )
        self.dispatcher = Dispatcher(
            outbox=self.outbox,
            incidents=self.incidents,
            gateway=self.gateway,
            clock=self.clock,
            matrix=lambda: self.matrix.active().matrix,
            admins=settings.SLA_BOT_ADMINS,
            composer=self._compose,
            on_event=self.telemetry.delivery_event,
            heartbeat=lambda: self.ticker.beat(),
            updates=UpdatePosts(
                publications=self.publications,
                outbox=self.outbox,
                gateway=self.gateway,
                statuspage=lambda: self.statuspage is not None,
                command=settings.SLA_BOT_COMMAND,
            ),
            statuspage=self.statuspage,
            epoch=lambda: self.leadership.epoch,
            leading=lambda: self.leadership.is_leader(),
            workspace_url=self.reporting.workspace_url,
            senders=settings.SLA_BOT_SENDERS,
        )
        self.meta = Meta(self.store)
        self.followups = Followups(self.store)
        self.drills = Drills(self.store)
        self.rhythm = Rhythm(
            outbox=self.outbox,
            meta=self.meta,
            followups=self.followups,
            drills=self.drills,
            matrix=self.matrix,
            workspace=WorkspaceReader(self.client),
            clock=self.clock,
            digest=self.reports.digest_blocks,
        )
        self.ticker = Ticker(tick=self.tick, next_due=self._next_due, clock=self.clock)
        db = settings.SLA_BOT_DB
        self.leadership = make_leadership(
            self.store,
            singleton=singleton,
            lock_file=db.with_suffix(db.suffix + ".lock") if isinstance(db, Path) else None,
            clock=self.clock,
            on_elected=self._elected,
            on_wake=self.ticker.wake,
            retry_s=settings.SLA_BOT_LEADER_RETRY,
            lease_s=settings.SLA_BOT_LEADER_LEASE,
        )
        self.telemetry.registry.register(LeadershipMetrics(self.leadership))
        usergroups = UsergroupDirectory(directory_client(settings))
        self.service = IncidentService(
            incidents=self.incidents,
            outbox=self.outbox,
            clock=self.clock,
            matrix=self.matrix,
            admins=frozenset(settings.SLA_BOT_ADMINS),
            wake=self._wake,
            drills=self.drills,
            on_change=self._incident_changed,
            usergroup_members=usergroups.members,
            cannot_post=PostingCheck(directory_client(settings)).refusal,
            bot_user=lambda: self.identity.bot_user_id,
            statuspage=self.statuspage is not None,
        )
        self.updates = CustomerUpdates(
            publications=self.publications,
            service=self.service,
            matrix=self.matrix,
            clock=self.clock,
            admins=frozenset(settings.SLA_BOT_ADMINS),
            wake=self._wake,
            statuspage=self.statuspage is not None,
            usergroup_members=usergroups.members,
            on_change=self._incident_changed,
        )
        self.ops = Operations(
            matrix=self.matrix,
            versions=self.versions,
            matrix_path=settings.SLA_BOT_MATRIX,
            rhythm=self.rhythm,
            followups=self.followups,
            drills=self.drills,
            incidents=self.incidents,
            service=self.service,
            clock=self.clock,
            admins=frozenset(settings.SLA_BOT_ADMINS),
            wake=self._wake,
            meta=self.meta,
        )
        self.answers = Answers(
            matrix=self.matrix,
            service=self.service,
            command_name=settings.SLA_BOT_COMMAND,
            ops=self.ops,
            limits=RateLimiter(clock=self.clock, exempt=settings.SLA_BOT_ADMINS),
            reports=self.reports,
            facts_of=self.reporting.facts_of,
            updates=self.updates,
        )
        self.alert_intake = AlertIntake(
            ledger=AlertLedger(self.store),
            matrix=self.matrix,
            clock=self.clock,
            wake=self._wake,
            on_change=self._incident_changed,
            count=self.telemetry.alert,
        )
        self.app = self._bolt_app()
        self.http = SlackHttpApp(
            app=self.app,
            signing_secret=_secret(settings.SLACK_SIGNING_SECRET) or "",
            health=self.health,
            metrics=self.telemetry.render,
            first_delivery=lambda key: self.seen.first_time(key, at=self.clock.now()),
            alerts=AlertDoor(
                token=_secret(settings.SLA_BOT_ALERT_TOKEN),
                intake=self.alert_intake,
                refused=lambda source: self.telemetry.alert(source, "refused"),
                grafana=grafana_signing(settings),
            ),
        )
        self.link_health: Callable[[], tuple[str | None, dict[str, object]]] | None = None

    def _bolt_app(self) -> App:
        def authorize() -> AuthorizeResult:  # Bolt passes arguments by the names declared here
            return self._authorize()

        # Bolt takes the token from `authorize`, so its client needs none of its own.
        _quiet_bolt_token_warning()
        bolt_client = interactive_client(self.settings.model_copy(update={"SLACK_BOT_TOKEN": None}))
        app = App(
            client=bolt_client,
            authorize=authorize,
            process_before_response=True,
            request_verification_enabled=False,  # verified in bot.inbound.http before Bolt sees the request
            ignoring_self_events_enabled=True,
            name="sla-escalation-bot",
        )

        # One middleware object (not two decorated functions): Bolt calls it directly, without
        # working out keyword arguments for each request.
        app.use(_Gate(self))

        register(
            app,
            command=self.settings.SLA_BOT_COMMAND,
            answers=self.answers,
            service=self.service,
            matrix=self.matrix,
            clock=self.clock,
            background=self.background,
            updates=self.updates,
        )
        register_home(app, self.home)
        register_rhythm(app, ops=self.ops, background=self.background)
        register_fallbacks(app)
        return app

    def workspace(self) -> str | None:
        """The workspace this bot serves: SLACK_TEAM_ID, else the one auth.test names (asked
        again, at most every 30 s, while it is not known)."""
        if self.settings.SLACK_TEAM_ID is not None:
            return self.settings.SLACK_TEAM_ID
        if self.identity.team_id is None:
            with self._identify_lock:  # requests arriving meanwhile wait for this one answer
                if self.identity.team_id is None and time.monotonic() >= self._identify_after:
                    self._identify_after = time.monotonic() + IDENTIFY_EVERY_S
                    self.identify(client=directory_client(self.settings, keep_alive=False))
        return self.identity.team_id

    def refuse_workspace(self, req: BoltRequest) -> BoltResponse:
        team, user = req.context.team_id, req.context.user_id or "unknown"
        expected = self.workspace()
        log.warning("refused a request from workspace %s (this bot serves %s)", team, expected)
        self.incidents.audit(
            at=self.clock.now(),
            actor=user,
            action="refused_workspace",
            detail={"team_id": team, "serves": expected},
        )
        if expected is None:
            words = "The bot has not yet learned which workspace it serves; try again shortly."
        else:
            words = "This bot serves another Slack workspace; nothing was done."
        if "command" in req.body:
            notice = render_notice(f":no_entry_sign: {words}")
            body = {"response_type": "ephemeral", "text": notice.text, "blocks": notice.blocks}
            return BoltResponse(status=200, body=json.dumps(body))
        return BoltResponse(status=200, body="")

    def _authorize(self) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id=self.identity.team_id,
            bot_user_id=self.identity.bot_user_id,
            bot_id=self.identity.bot_id,
            bot_token=_secret(self.settings.SLACK_BOT_TOKEN),
        )

    def identify(self, *, client: WebClient | None = None) -> None:
        """Ask Slack who we are (auth.test); a failure is logged, not fatal: `workspace` asks
        again when a request arrives."""
        try:
            response = (client or self.client).auth_test()
        except SlackApiError as exc:
            log.error("auth.test failed: %s (check SLACK_BOT_TOKEN)", exc.response.get("error"))
            return
        except OSError as exc:
            log.warning("auth.test could not reach Slack: %s", exc)
            return
        self.identity = Identity(
            response.get("team_id"), response.get("user_id"), response.get("bot_id")
        )
        if response.get("url"):  # lets reports made offline link to incident cards
            self.reporting.remember_workspace_url(str(response["url"]))

    def _compose(self, row: Claimed, now: datetime) -> Composed | str:
        """Posts that belong to no incident: the operating rhythm, and unrouted alerts."""
        if row.message.kind is MessageKind.ALERT_UNROUTED:
            alert = row.payload.get("alert") or {}
            return Composed(
                self.matrix.active().matrix.channels.incidents,
                render_unrouted(row.payload),
                {"alert_key": str(alert.get("key", ""))[:255]},
            )
        return self.rhythm.compose(row, now)

    def _incident_changed(self, incident: Incident, change: str) -> None:
        self.telemetry.incident_changed(incident, change)
        self.home.changed()

    def _tick_age(self) -> float | None:
        last = self.ticker.last_tick_real
        return None if last is None else (datetime.now(UTC) - last).total_seconds()

    def _next_due(self) -> datetime | None:
        """When the dispatcher next has work; never, on a replica that does not lead."""
        return self.outbox.next_wake() if self.leadership.is_leader() else None

    def _wake(self) -> None:
        """Something may be due now (a declaration, an action, an alert): tick here, and tell
        the leading replica when it is another one."""
        self.dispatcher.poke()
        self.ticker.wake()
        self.leadership.notify()

    def _elected(self, epoch: int | None) -> None:
        """This process leads now: hand out again what a previous leader left in flight, each
        looked up in Slack before it is re-sent. With replicas, a deposed leader may still be
        finishing a send it began before it lost the lead, so they wait out the Slack timeout."""
        now = self.clock.now()
        settle = None
        if self.leadership.backend == "postgresql":
            settle = now + timedelta(seconds=self.settings.SLA_BOT_SLACK_TIMEOUT + 1)
        interrupted = self.outbox.recover_interrupted(now=now, not_before=settle)
        if interrupted:
            log.warning(
                "%d post(s) were in flight when the bot last stopped; each is looked up in "
                "Slack by its metadata key before it is sent: %s",
                len(interrupted),
                ", ".join(interrupted[:20]),
            )
        self.ticker.wake()

    def tick(self) -> int:
        """One scheduler beat: plan due rhythm posts, forget old request keys (hourly), then
        deliver everything due (only on the replica that leads)."""
        if not self.leadership.is_leader():
            return 0
        try:
            self.matrix.refresh()
            self.rhythm.plan(self.clock.now())
        except Exception:  # planning must never stop delivery; the traceback goes to the log
            log.exception("rhythm planning failed")
        self._forget_old_requests()
        return self.dispatcher.tick()

    def _settle_verdicts(self) -> None:
        """Store the verdicts of incidents resolved since the last run (the leader only), so
        `/escalate report` answers from sums instead of judging them while Slack waits."""
        if not self.leadership.is_leader():
            return
        try:
            self.reports.settle(now=self.clock.now())
        except Exception:  # housekeeping must never stop the bot; the traceback goes to the log
            log.exception("settling report verdicts failed")

    def _forget_old_requests(self) -> None:
        """Prune `seen_requests` (keys older than a day) at most once per FORGET_EVERY of the
        bot's clock; a clock that stepped back prunes again, which is harmless."""
        now = self.clock.now()
        last = self._forgotten_at
        if last is not None and last <= now < last + FORGET_EVERY:
            return
        try:
            forgotten = self.seen.forget_older_than(now)
        except Exception:  # housekeeping must never stop delivery; the traceback goes to the log
            log.exception("forgetting old request keys failed")
            return
        self._forgotten_at = now
        if forgotten:
            log.debug("forgot %d request keys older than a day", forgotten)

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy only when the dispatcher is ticking and progressing, its ticks succeed, the
        database takes writes, no post went dead in the last DEAD_WINDOW and, in Socket Mode, a
        connection to Slack is up (or has been down less than its grace). The JSON names
        every problem and the counts behind it."""
        problems, detail = self.ticker.problems()
        detail["dispatcher"] = LEADER if self.leadership.is_leader() else STANDBY
        detail["backend"] = self.store.backend
        detail["leadership"] = self.leadership.detail()
        storage = self.store.problem()
        detail["outbox"], dead = None, 0
        if storage is not None:
            problems.append(storage)  # and no reads: a damaged file can hold them for seconds
        else:
            try:
                detail["outbox"] = self.outbox.counts()
                dead = self.outbox.dead_since(self.clock.now() - DEAD_WINDOW)
            except StorageError as exc:
                problems.append(f"database {self.store.name} cannot be read: {exc}")
        detail["dead_recently"] = dead
        if dead:
            minutes = DEAD_WINDOW.total_seconds() / 60
            problems.append(
                f"{dead} post(s) went dead in the last {minutes:.0f} min (admins were alerted)"
            )
        detail["database"] = storage or "ok"
        if self.link_health is not None:  # Socket Mode: is a connection to Slack up?
            link_problem, link_detail = self.link_health()
            detail |= link_detail
            if link_problem is not None:
                problems.append(link_problem)
        detail["problems"] = problems
        return not problems, detail

    def start(self) -> None:
        """Take the scheduler lock (SQLite) or join the election (PostgreSQL), and start
        delivering once leading (`_elected`)."""
        self.leadership.start()
        self.identify()
        self.alert_intake.replay_unapplied()  # payloads stored but not applied before a crash
        self.ticker.start()
        self.ticker.every(SETTLE_EVERY, self._settle_verdicts, first_in=SETTLE_FIRST)

    def stop(self) -> None:
        self.ticker.shutdown()
        self.dispatcher.close()
        self.background.shutdown(wait=True, cancel_futures=False)
        self.leadership.stop()
        self.store.close()
