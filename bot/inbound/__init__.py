"""Where requests come in: the HTTP front door and its alert endpoints, Socket Mode, the Bolt
listeners (and the customer-update form they open), slash-command parsing and answering, the
per-channel limits, and the one place an error becomes words for the person who caused it."""
