"""``views.publish`` (App Home) and ``views.open`` (modals)."""

from __future__ import annotations

import hashlib

from bot.sandbox.fakeslack.blockkit import _check_text, _too_long, validate_blocks
from bot.sandbox.fakeslack.constants import API_APP_ID, BOT_ID, TEAM_ID, VIEW_MAX_BLOCKS, JsonDict
from bot.sandbox.fakeslack.model import SlackError, ViewRecord
from bot.sandbox.fakeslack.state import State
from bot.sandbox.fakeslack.wire import _arg, _json_arg


class ViewMethods(State):
    """``views.publish`` (App Home) and ``views.open`` (modals)."""

    def _view(self, args: JsonDict, *, kind: str) -> JsonDict:
        view = _json_arg(args, "view", "invalid_arguments")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", "[ERROR] missing required field: view")
        errors = validate_blocks(
            view.get("blocks", []), max_blocks=VIEW_MAX_BLOCKS, pointer="/view/blocks"
        )
        if view.get("type") != kind:
            errors.append(f"[ERROR] must be {kind} [json-pointer:/view/type]")
        if kind == "modal":
            errors += _check_text(view.get("title"), "/view/title", limit=24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                errors += _check_text(view[key], f"/view/{key}", limit=24, plain_only=True)
        for key, limit in (("private_metadata", 3000), ("callback_id", 255)):
            value = view.get(key)
            if isinstance(value, str) and len(value) > limit:
                errors.append(_too_long(limit, f"/view/{key}"))
        if errors:
            raise SlackError("invalid_arguments", *errors)
        return view

    def _view_json(self, record: ViewRecord) -> JsonDict:
        view = record.view
        return {
            "id": record.id,
            "team_id": TEAM_ID,
            "type": view["type"],
            "blocks": self._with_block_ids(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": record.hash,
            "title": view.get("title"),
            "clear_on_close": False,
            "notify_on_close": False,
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": record.id,
            "app_id": API_APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }

    def _record_view(
        self, method: str, view: JsonDict, *, user_id: str | None, trigger_id: str | None
    ) -> ViewRecord:
        self._counter += 1
        view_id = f"V{self._counter:08d}"
        if method == "home":
            previous = [v for v in self._views if v.user_id == user_id and v.method == "home"]
            view_id = previous[-1].id if previous else view_id
        digest = hashlib.sha1(f"{view_id}{self._counter}".encode()).hexdigest()[:12]
        view_hash = f"{int(self._clock())}.{digest}"
        record = ViewRecord(view_id, method, user_id, trigger_id, view, view_hash)
        self._views.append(record)
        return record

    def _views_publish(self, args: JsonDict) -> JsonDict:
        user_id = _arg(args, "user_id")
        if user_id is None or user_id not in self._users:
            raise SlackError("user_not_found")
        view = self._view(args, kind="home")
        current = [v for v in self._views if v.user_id == user_id and v.method == "home"]
        expected = _arg(args, "hash")
        if expected is not None and current and current[-1].hash != expected:
            raise SlackError("hash_conflict")
        record = self._record_view("home", view, user_id=user_id, trigger_id=None)
        return {"ok": True, "view": self._view_json(record)}

    def _views_open(self, args: JsonDict) -> JsonDict:
        trigger_id = _arg(args, "trigger_id")
        if trigger_id is None:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: trigger_id")
        if trigger_id in self._expired_triggers:
            raise SlackError("expired_trigger_id")
        view = self._view(args, kind="modal")
        record = self._record_view("modal", view, user_id=None, trigger_id=trigger_id)
        return {"ok": True, "view": self._view_json(record)}
