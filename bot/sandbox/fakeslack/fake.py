"""`FakeSlack`: the workspace, its faults and every Web API method, put together."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from bot.sandbox.fakeslack.constants import (
    BOT_NAME,
    BOT_USER_ID,
    DEFAULT_APP_TOKEN,
    DEFAULT_TOKEN,
    JsonDict,
)
from bot.sandbox.fakeslack.conversations import ConversationMethods
from bot.sandbox.fakeslack.faults import Fault
from bot.sandbox.fakeslack.model import (
    Call,
    Ephemeral,
    ResponsePost,
    ViewRecord,
    _Channel,
    _ResponseUrl,
    _User,
    _Usergroup,
)
from bot.sandbox.fakeslack.recorded import Recorded
from bot.sandbox.fakeslack.server import Serving, _Server
from bot.sandbox.fakeslack.views import ViewMethods
from bot.sandbox.fakeslack.workspace import Workspace


class FakeSlack(Serving, Workspace, Recorded, ConversationMethods, ViewMethods):
    """Slack's Web API on ``127.0.0.1``; see the package docstring for the rules it follows."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        blocks_text_limit: int = 12_000,
    ) -> None:
        self.token = token
        self.app_token = app_token
        self._socket_mode: Callable[[], str] | None = None
        self.blocks_text_limit = blocks_text_limit
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._last_micros = 0
        self._counter = 0
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, _User] = {}
        self._usergroups: dict[str, _Usergroup] = {}
        self._ephemerals: list[Ephemeral] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._responses: list[ResponsePost] = []
        self._views: list[ViewRecord] = []
        self._expired_triggers: set[str] = set()
        self.add_user(BOT_USER_ID, name=BOT_NAME, is_bot=True)
        self._methods: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
        }
