"""Pure domain core of the SLA Escalation Bot: no clock, network, disk or environment."""
