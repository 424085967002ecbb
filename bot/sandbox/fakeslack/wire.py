"""Reading a Web API request: form or JSON bodies, arguments, headers, ``ts`` values and cursors."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from bot.sandbox.fakeslack.constants import JsonDict
from bot.sandbox.fakeslack.model import SlackError

_TS_RE = re.compile(r"^\d+(\.\d+)?$")


def _ts_key(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])


def _format_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _arg(args: JsonDict, key: str) -> str | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _flag(args: JsonDict, key: str) -> bool:
    value = args.get(key)
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _limit(args: JsonDict, *, default: int, maximum: int) -> int:
    try:
        value = int(args.get("limit") or default)
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None
    return min(value if value > 0 else default, maximum)


def _json_arg(args: JsonDict, key: str, error: str) -> Any:
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SlackError(error) from None
    return value


def _header(headers: dict[str, str], name: str) -> str | None:
    """Header lookup ignoring case (urllib sends ``Content-type``)."""
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _encode_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
        return _ts_key(decoded.removeprefix("next_ts:"))
    except ValueError:
        raise SlackError("invalid_cursor") from None


def _parse_body(content_type: str, raw: bytes, query: str) -> tuple[JsonDict, bool]:
    """Form or JSON body merged over the query string; returns (args, body_was_json)."""
    args: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
    if not raw:
        return args, False
    if content_type.startswith("application/json"):
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        return {**args, **body}, True
    if content_type.startswith("multipart/"):
        raise SlackError("invalid_form_data")
    return {**args, **dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))}, False
