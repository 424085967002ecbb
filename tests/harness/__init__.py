"""Cheap real things the tests drive the bot with; nothing here mocks the bot's own code.

- `workspace`: paths and IDs, the seed matrix and documents edited from it, a fake Slack on the
  test's clock holding the seed channels and people, the bot's settings pointed at it.
- `clock`: `ManualClock`, simulated time the test moves.
- `loopback`: a free port, a WSGI app on waitress in this process, a signed keep-alive client.
- `process`: the `sla-bot` CLI run to completion, and `sla-bot serve` as a restartable,
  killable child (`ServeProcess`, the ``bot_process`` fixture).
- `app`: the bot in process with its own scheduler (`AppServer`, ``bot_app``).
- `stepped`: the bot in process, stepped through simulated time beat by beat (`Bot`).
- `delivery`: the bot in process with only its dispatcher ticked, plus delivery figures.
- `rhythm`: workspaces with chosen problems, and the clicks and modals of the rhythm tests.
- `logs`: this process's log records while a block runs.
- `children`: child processes writing to the database until killed (D1, D2).
- `socket_slack`: a fake of Slack's Socket Mode server over a real WebSocket (ws:// or wss://),
  with refreshes, redelivery and dead links (FIN, RST, unanswered pings, a frozen server).
"""
