"""The local sandbox: `sla-bot sandbox` (a terminal chat with the real bot), the terminal rendering
of Slack messages, and the fake Slack it talks to (also the tests' and benchmarks' Slack). No
product module imports the fake Slack: an import contract in pyproject.toml checks it."""
