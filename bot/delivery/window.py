"""How many posts the dispatcher keeps in flight: enough to cover the time Slack takes to answer,
and no more.

A post spends most of its time waiting for Slack's answer (100-300 ms) and well under a
millisecond of CPU in this process (routing, rendering, building and reading the request,
recording it). Senders waiting on Slack cost nothing, so a slow Slack needs many posts in flight:
about answer time / CPU per post of them keep the interpreter busy (Little's law). Beyond that
they only queue for CPython's interpreter lock, whose waiters wake every switch interval, and the
CPU goes to switching threads instead of posting (measured: 64 senders against an instant Slack
spend nearly twice the CPU per post of 8).

Like TCP's BBR, the window is the product of the quickest answer seen lately (waiting for the
interpreter only ever adds to an answer's time, so the minimum is the network's) and the posts
a CPU second makes (the process's CPU time over the posts it handled), times GAIN, within
[LEAST, the pool's size]. Until it has measured both, the window is the pool's size.
"""

from __future__ import annotations

import collections
import math

LEAST = 4  # posts in flight however fast Slack answers
GAIN = 2.0  # times the in-flight count that just keeps the interpreter busy
ANSWERS = 64  # the quickest of this many recent answers is the network's time
SMOOTHING = 0.2  # weight of the latest measurement in the running average of CPU per post


class Window:
    """`answered` is called by the senders, `spent` and `size` by the dispatcher's tick."""

    def __init__(self, *, most: int, least: int = LEAST) -> None:
        self._most = max(1, most)
        self._least = min(least, self._most)
        self._answers: collections.deque[float] = collections.deque(maxlen=ANSWERS)
        self._cpu_s: float | None = None  # running average: this process's CPU per post
        self.size = self._most

    def answered(self, seconds: float) -> None:
        """Slack answered a post in `seconds` (appending to a deque needs no lock)."""
        self._answers.append(seconds)

    def spent(self, *, cpu_s: float, posts: int) -> None:
        """This process spent `cpu_s` of CPU while `posts` posts were handled."""
        if posts <= 0:
            return
        latest = max(cpu_s / posts, 1e-5)
        average = self._cpu_s
        self._cpu_s = latest if average is None else average + SMOOTHING * (latest - average)
        answers = list(self._answers)
        if answers:
            wanted = GAIN * (min(answers) / self._cpu_s + 1)
            self.size = max(self._least, min(self._most, math.ceil(wanted)))
