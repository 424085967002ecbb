"""Getting planned messages out exactly once: the dispatcher (claim due outbox rows, decide, post,
record), what a failed post does, the scheduler that wakes the dispatcher, which process leads
(runs the dispatcher), and what it sends beyond Slack's chat: the customer-update posts composed at
send time and the Statuspage client."""
