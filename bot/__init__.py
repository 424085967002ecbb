"""Slack bot, CLI and scheduler wiring: the imperative shell."""
