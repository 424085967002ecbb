"""Delivery: the outbox's due rows, posted to Slack exactly once, paced per channel.

dispatcher.py  the tick: claims due rows, hands them to a bounded pool of senders (one post
               in flight per channel), records what was sent in batches
routing.py     for one row: send, wait or skip (the pure timeline rules), where it goes and
               what it says
pacing.py      about one post a second per channel, and one at a time
folding.py     a channel's backlog of executive notices folded into one digest post
sending.py     the one send path: look in Slack first when a send may have landed, then post
failures.py    what a failed send does next: retry, back off, move the incident, give up
"""

from bot.delivery.dispatcher import Dispatcher
from bot.delivery.routing import Composed, Composer

__all__ = ["Composed", "Composer", "Dispatcher"]
