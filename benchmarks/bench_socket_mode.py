"""Socket Mode under refresh and dead links, over a real WebSocket to the fake Socket Mode server
(`tests.harness.socket_slack`) on loopback.

Two parts:

- ``clients``: the candidate Socket Mode clients side by side, in this process with a listener
  that acknowledges at once: slack_sdk's built-in client and its `websocket-client` one (both as
  shipped, as Bolt's adapters build them), and ours (`bot.inbound.socket_mode`). Per client: ack latency,
  acknowledgements later than 3 s (or never) while a refresh happens under 50 envelopes/s, the
  time from each kind of dead link (FIN, RST, pings unanswered, frozen server) to a new
  connection saying hello, and the CPU a client uses in the 10 s after its connection died while
  Slack cannot be reached (the client alone, in a child process).
- ``bot``: `sla-bot serve` as a child process: ``/escalate latency-spike`` ack latency in Socket
  Mode and over HTTP in the same run (turns in blocks), late acks across refreshes at 50/s, time to
  notice each dead link, CPU while disconnected, and SIGTERM to exit.

    .venv/bin/python -m benchmarks.bench_socket_mode [--part clients|bot|all] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.inbound.socket_mode import PING_INTERVAL_S
from bot.sandbox.fakeslack import API_APP_ID, TEAM_ID, FakeSlack
from tests.harness.process import ServeProcess
from tests.harness.socket_slack import Envelope, FakeSocketMode
from tests.harness.workspace import INCIDENTS, add_matrix_channels

CLIENTS = ("builtin", "websocket-client", "ours")
FAULTS = ("fin", "rst", "mute_pings", "freeze")
RATE = 50  # envelopes per second during a refresh
NOTICE_CAP_S = 60.0  # a client that has not reconnected by then is reported as "> 60 s"
CPU_WINDOW_S = 10.0
TICK = os.sysconf("SC_CLK_TCK")
RNG = random.Random(12)
# 12 s at RATE/s with a refresh of each kind; Slack closes each old connection 10 s after asking.
THREE_REFRESHES: dict[str, Any] = {
    "seconds": 12,
    "refresh_at": [(2.0, "refresh_requested"), (6.0, "warning"), (9.0, "link_disabled")],
}


# ---------------------------------------------------------------------------- helpers
def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_percent(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return round(100 * (cpu_seconds(pid) - before) / seconds, 2)


def lookup(fake: FakeSlack, text: str = "latency-spike") -> dict[str, Any]:
    return {
        "token": "unused",
        "team_id": TEAM_ID,
        "team_domain": "sla-fake",
        "channel_id": INCIDENTS,
        "channel_name": "incidents",
        "user_id": "U0AMERINF1",
        "user_name": "bench",
        "command": "/escalate",
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": fake.response_url(channel=INCIDENTS, user="U0AMERINF1"),
        "trigger_id": f"{time.time_ns()}.bench",
    }


def await_ack(server: FakeSocketMode, envelope: Envelope) -> None:
    server.wait_for(lambda: envelope.acks, what="an ack")


def await_all_acked(server: FakeSocketMode, envelopes: list[Envelope]) -> None:
    server.wait_for(lambda: all(server.acked(e) for e in envelopes), NOTICE_CAP_S)


def sender(server: FakeSocketMode, fake: FakeSlack) -> Callable[[], Envelope]:
    return lambda: server.send("slash_commands", lookup(fake))


def newest_hello(server: FakeSocketMode, after: int, timeout: float) -> float | None:
    """Monotonic time a connection opened after link `after` said hello, or None."""
    try:
        link = server.wait_for(
            lambda: next((ln for ln in server.live() if ln.id > after), None), timeout
        )
    except TimeoutError:
        return None
    return link.hello_at if link is not None else None


def refresh_under_load(
    server: FakeSocketMode,
    send: Callable[[], Envelope],
    *,
    seconds: float,
    refresh_at: list[tuple[float, str]],
) -> dict[str, Any]:
    """Envelopes at RATE/s for `seconds`, `disconnect(reason)` at each offset; then count the
    acks later than 3 s and the envelopes never acknowledged (after 10 s more)."""
    sent: list[Envelope] = []
    started = time.monotonic()
    plan = sorted(refresh_at)
    for i in range(int(seconds * RATE)):
        due = started + i / RATE
        time.sleep(max(0.0, due - time.monotonic()))
        while plan and time.monotonic() - started >= plan[0][0]:
            server.disconnect(plan.pop(0)[1])  # type: ignore[arg-type]
        sent.append(send())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(server.acked(e) for e in sent):
        time.sleep(0.05)
    latencies = [e.ack_latency for e in sent if e.ack_latency is not None]
    first = [e for e in sent if e.retry_attempt == 0]
    return {
        "envelopes": len(first),
        "late_over_3s": sum(1 for x in latencies if x > 3.0),
        "never_acked": sum(1 for e in first if not server.acked(e)),
        "max_ack_s": round(max(latencies), 3) if latencies else None,
        "p99_ack_ms": round(pct(latencies, 0.99) * 1000, 2) if latencies else None,
    }


# ---------------------------------------------------------------------------- part 1: clients
def make_client(name: str, api_url: str, app_token: str) -> BaseSocketModeClient:
    web = WebClient(base_url=api_url)
    client: BaseSocketModeClient
    if name == "builtin":
        from slack_sdk.socket_mode.builtin import SocketModeClient as Builtin

        client = Builtin(app_token=app_token, web_client=web)
    elif name == "websocket-client":
        from slack_sdk.socket_mode.websocket_client import SocketModeClient as WsClient

        client = WsClient(app_token=app_token, web_client=web)
    else:
        from bot.inbound.socket_mode import SocketModeClient as Ours

        client = Ours(app_token, web_client=web)

    def ack(c: BaseSocketModeClient, req: SocketModeRequest) -> None:
        c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        finished = getattr(c, "finished", None)
        if finished is not None:
            finished(req.envelope_id)

    client.socket_mode_request_listeners.append(ack)
    return client


def _cpu_child(name: str, api_url: str, app_token: str) -> None:
    """Runs in a child process: one client connected until killed."""
    client = make_client(name, api_url, app_token)
    client.connect()
    while True:
        time.sleep(60)


def clients_part() -> dict[str, Any]:
    """Each client measured in its own process, so threads one leaves behind (a stuck client)
    cannot slow the next."""
    results: dict[str, Any] = {}
    for name in CLIENTS:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_socket_mode", "--client", name],
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  measured {name}", flush=True)
    return results


def measure_client(name: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    with FakeSlack() as fake, FakeSocketMode(fake) as server:
        client = make_client(name, fake.url, fake.app_token)
        client.connect()
        server.wait_for(server.live, what="connected")
        latencies = []
        for _ in range(200):
            envelope = server.send("slash_commands", lookup(fake))
            await_ack(server, envelope)
            latencies.append(envelope.ack_latency or 0.0)
        row["ack_p50_ms"] = round(pct(latencies, 0.5) * 1000, 2)
        row["ack_p99_ms"] = round(pct(latencies, 0.99) * 1000, 2)
        row["refresh"] = refresh_under_load(server, sender(server, fake), **THREE_REFRESHES)
        threading.Thread(target=client.close, daemon=True).start()
    row["dead_link_to_new_hello_s"] = {fault: client_notice(name, fault) for fault in FAULTS}
    row["cpu_disconnected_pct"] = client_cpu_while_disconnected(name)
    return row


def client_notice(name: str, fault: str) -> float | None:
    """Seconds from `fault` on a fresh client's connection to its next connection's hello."""
    with FakeSlack() as fake, FakeSocketMode(fake) as server:
        client = make_client(name, fake.url, fake.app_token)
        client.connect()
        server.wait_for(server.live, what="connected")
        time.sleep(RNG.uniform(0, 5))  # faults land anywhere in the clients' ping cycles
        at = time.monotonic()
        server.break_links(fault)  # type: ignore[arg-type]
        hello = newest_hello(server, 1, NOTICE_CAP_S)
        threading.Thread(target=client.close, daemon=True).start()  # a stuck one may not close
        return None if hello is None else round(hello - at, 2)


def client_cpu_while_disconnected(name: str) -> float:
    """The client alone in a child process: its link ends with a FIN while apps.connections.open
    is unreachable; CPU over the next CPU_WINDOW_S."""
    context = multiprocessing.get_context("fork")
    with FakeSlack() as fake, FakeSocketMode(fake) as server:
        child = context.Process(target=_cpu_child, args=(name, fake.url, fake.app_token))
        child.start()
        try:
            server.wait_for(server.live, what="child connected")
            fake.go_down()
            server.break_links("fin")
            assert child.pid is not None
            return cpu_percent(child.pid, CPU_WINDOW_S)
        finally:
            child.kill()
            child.join()
            fake.come_up()


# ---------------------------------------------------------------------------- part 2: the bot
@contextmanager
def serving(folder: Path, *, socket: bool) -> Iterator[tuple[FakeSlack, FakeSocketMode, Any]]:
    fake = FakeSlack().start()
    add_matrix_channels(fake)
    server = FakeSocketMode(fake).start()
    env = {"SLACK_APP_TOKEN": fake.app_token, "SLA_BOT_SOCKET_GRACE": "5"} if socket else {}
    bot = ServeProcess(fake, folder / ("socket.db" if socket else "http.db"), env=env)
    bot.start()
    if socket:
        server.wait_for(server.live, what="the bot connected")
    try:
        yield fake, server, bot
    finally:
        bot.stop()
        server.stop()
        fake.stop()


def bot_part(requests: int = 1000) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with (
            serving(folder, socket=True) as (fake, server, bot),
            serving(folder, socket=False) as (_, _, http_bot),
        ):
            socket_ms: list[float] = []
            http_ms: list[float] = []
            for block in range(requests // 100):
                for _ in range(100):
                    envelope = server.send("slash_commands", lookup(fake))
                    await_ack(server, envelope)
                    socket_ms.append((envelope.ack_latency or 0.0) * 1000)
                for _ in range(100):
                    started = time.perf_counter()
                    reply = http_bot.command("latency-spike")
                    assert reply.status == 200 and b"SEV-2" in reply.body, reply
                    http_ms.append((time.perf_counter() - started) * 1000)
                del block
            result["ack_ms"] = {
                "socket": {
                    "p50": round(pct(socket_ms, 0.5), 2),
                    "p99": round(pct(socket_ms, 0.99), 2),
                },
                "http": {"p50": round(pct(http_ms, 0.5), 2), "p99": round(pct(http_ms, 0.99), 2)},
                "requests_each": len(socket_ms),
            }
            print("  measured ack latency", flush=True)
            result["refresh_50_per_s"] = refresh_under_load(
                server, sender(server, fake), **THREE_REFRESHES
            )
            print("  measured refreshes", flush=True)
            notice: dict[str, list[float]] = {}
            for fault in FAULTS:
                for _ in range(5):
                    server.wait_for(server.live, what="a live link")
                    last = max(link.id for link in server.links)
                    time.sleep(RNG.uniform(0, PING_INTERVAL_S))  # anywhere in the ping cycle
                    at = time.monotonic()
                    server.break_links(fault)  # type: ignore[arg-type]
                    hello = newest_hello(server, last, NOTICE_CAP_S)
                    notice.setdefault(fault, []).append(
                        NOTICE_CAP_S if hello is None else round(hello - at, 2)
                    )
            result["dead_link_to_new_hello_s"] = {
                fault: {"mean": round(statistics.fmean(v), 2), "max": max(v)}
                for fault, v in notice.items()
            }
            print("  measured dead links", flush=True)
            result["drops_under_load"] = drops_under_load(fake, server)
            print("  measured drops under load", flush=True)
            assert bot.process is not None
            result["cpu_pct"] = {"connected_idle": cpu_percent(bot.process.pid, CPU_WINDOW_S)}
            fake.go_down()
            server.break_links("rst")
            result["cpu_pct"]["disconnected"] = cpu_percent(bot.process.pid, CPU_WINDOW_S)
            fake.come_up()
            server.wait_for(server.live, what="reconnected after the outage")
            link = server.live()[-1]
            started = time.monotonic()
            code = bot.stop()
            result["sigterm_to_exit_s"] = round(time.monotonic() - started, 2)
            result["sigterm_exit_code"] = code
            server.wait_for(lambda: not link.open, what="the connection closed")
            result["close_frame_sent"] = link.client_close_code
    return result


def drops_under_load(fake: FakeSlack, server: FakeSocketMode, drops: int = 50) -> dict[str, Any]:
    """S7: `drops` times, five App Home events (each from its own user) and five lookups are put
    on the connection, which then ends with a FIN or an RST (alternately) before they can all be
    answered. Slack delivers unacknowledged events again on the next connection; commands it
    does not. Each event must be processed exactly once (one `views.publish` for its user)."""
    users: list[str] = []
    commands: list[Envelope] = []
    reconnect: list[float] = []
    for drop in range(drops):
        last = max(link.id for link in server.links)
        events: list[Envelope] = []
        for n in range(5):
            user = f"U0DROP{drop:02d}{n}"
            fake.add_user(user, name=user.lower())
            users.append(user)
            event = {
                "type": "event_callback",
                "team_id": TEAM_ID,
                "api_app_id": API_APP_ID,
                "event_id": f"Ev0DROP{drop:02d}{n}",
                "event_time": int(time.time()),
                "event": {"type": "app_home_opened", "user": user, "tab": "home"},
            }
            events.append(server.send("events_api", event))
            commands.append(server.send("slash_commands", lookup(fake)))
        at = time.monotonic()
        server.break_links("fin" if drop % 2 else "rst")
        hello = newest_hello(server, last, NOTICE_CAP_S)
        reconnect.append(NOTICE_CAP_S if hello is None else hello - at)
        # Slack retries an event 3 times: the next drop waits until these are through.
        with contextlib.suppress(TimeoutError):
            await_all_acked(server, events)

    def published() -> dict[str, int]:
        counts = dict.fromkeys(users, 0)
        for call in fake.calls_to("views.publish"):
            if call.params.get("user_id") in counts:
                counts[str(call.params["user_id"])] += 1
        return counts

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and 0 in published().values():
        time.sleep(0.1)
    time.sleep(2)  # let any second publish of the same event show up
    counts = published()
    return {
        "drops": drops,
        "reconnect_max_s": round(max(reconnect), 2),
        "events": len(users),
        "events_lost": sum(1 for n in counts.values() if n == 0),
        "events_twice": sum(1 for n in counts.values() if n > 1),
        "event_redeliveries": sum(1 for e in server.envelopes if e.retry_attempt > 0),
        "commands": len(commands),
        "commands_answered": sum(1 for e in commands if e.acks),
    }


def markdown(clients: dict[str, Any] | None, bot: dict[str, Any] | None) -> str:
    lines: list[str] = []
    if clients:
        lines += [
            "| client | ack p50 / p99 | late (> 3 s) or lost over 3 refreshes, 50/s | FIN | RST | "
            "pings unanswered | frozen | CPU disconnected |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in clients.items():
            refresh = row["refresh"]
            notice = row["dead_link_to_new_hello_s"]
            cells = [f"{notice[f]} s" if notice[f] is not None else "> 60 s" for f in FAULTS]
            lines.append(
                f"| {name} | {row['ack_p50_ms']} / {row['ack_p99_ms']} ms | "
                f"{refresh['late_over_3s']} late, {refresh['never_acked']} lost of "
                f"{refresh['envelopes']} (max {refresh['max_ack_s']} s) | "
                + " | ".join(cells)
                + f" | {row['cpu_disconnected_pct']} % |"
            )
        lines.append("")
    if bot:
        ack = bot["ack_ms"]
        refresh = bot["refresh_50_per_s"]
        notice = bot["dead_link_to_new_hello_s"]
        lines += [
            f"- ack latency, `/escalate latency-spike` ({ack['requests_each']} each): Socket Mode "
            f"p50 {ack['socket']['p50']} ms, p99 {ack['socket']['p99']} ms; HTTP p50 "
            f"{ack['http']['p50']} ms, p99 {ack['http']['p99']} ms",
            f"- three refreshes (refresh_requested, warning, link_disabled) under {RATE} "
            f"envelopes/s: {refresh['late_over_3s']} of {refresh['envelopes']} acked after 3 s, "
            f"{refresh['never_acked']} never; slowest ack {refresh['max_ack_s']} s",
            "- dead link to a new connection (mean / max of 5): "
            + ", ".join(f"{f} {v['mean']} / {v['max']} s" for f, v in notice.items()),
            "- {drops} drops (FIN/RST) under load: reconnect max {reconnect_max_s} s; "
            "{events} events: {events_lost} lost, {events_twice} processed twice "
            "({event_redeliveries} redelivered by Slack); {commands_answered} of {commands} "
            "commands answered (the rest died with their connection; Slack does not redeliver "
            "commands)".format(**bot["drops_under_load"]),
            f"- CPU: {bot['cpu_pct']['connected_idle']} % connected and idle, "
            f"{bot['cpu_pct']['disconnected']} % disconnected with Slack unreachable",
            f"- SIGTERM to exit: {bot['sigterm_to_exit_s']} s (exit code "
            f"{bot['sigterm_exit_code']}, close frame {bot['close_frame_sent']})",
        ]
    return "\n".join(lines)


def run(part: str = "all", *, as_json: bool = False) -> dict[str, Any]:
    clients = clients_part() if part in ("clients", "all") else None
    bot = bot_part() if part in ("bot", "all") else None
    result = {"clients": clients, "bot": bot}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print("## Socket Mode\n")
        print(markdown(clients, bot))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["clients", "bot", "all"], default="all")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--client", choices=CLIENTS, help="measure one client, print JSON")
    args = parser.parse_args()
    if args.client:
        print(json.dumps(measure_client(args.client)), flush=True)
        os._exit(0)  # a stuck client's threads must not keep this process alive
    run(args.part, as_json=args.json)


if __name__ == "__main__":
    main()
