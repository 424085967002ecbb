"""Block Kit validation (the limits Slack enforces server-side) and reading blocks as text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot.sandbox.fakeslack.constants import JsonDict

_BLOCK_TYPES = {
    "section", "header", "divider", "context", "actions", "image", "rich_text", "markdown",
    "input", "file", "video", "table", "context_actions",
}  # fmt: skip


_TEXT_TYPES = {"plain_text", "mrkdwn"}


def _too_long(limit: int, pointer: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _check_text(obj: Any, pointer: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"[ERROR] must provide an object [json-pointer:{pointer}]"]
    allowed = {"plain_text"} if plain_only else _TEXT_TYPES
    if obj.get("type") not in allowed:
        return [f"[ERROR] must be one of {sorted(allowed)} [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{pointer}/text]"]
    return [_too_long(limit, f"{pointer}/text")] if len(text) > limit else []


def _check_element(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"[ERROR] must provide an element type [json-pointer:{pointer}]"]
    errors: list[str] = []
    if element["type"] == "button":
        errors += _check_text(element.get("text"), f"{pointer}/text", limit=75, plain_only=True)
    for key, limit in (("action_id", 255), ("value", 2000), ("url", 3000)):
        value = element.get(key)
        if isinstance(value, str) and len(value) > limit:
            errors.append(_too_long(limit, f"{pointer}/{key}"))
    return errors


def _check_block(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        kind = block.get("type") if isinstance(block, dict) else block
        return [f"[ERROR] unsupported type: {kind} [json-pointer:{pointer}/type]"]
    kind = block["type"]
    errors: list[str] = []
    block_id = block.get("block_id")
    if isinstance(block_id, str) and len(block_id) > 255:
        errors.append(_too_long(255, f"{pointer}/block_id"))
    if kind == "header":
        errors += _check_text(block.get("text"), f"{pointer}/text", limit=150, plain_only=True)
    elif kind == "section":
        errors += _check_section(block, pointer)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or len(text) > 12_000:
            errors.append(_too_long(12_000, f"{pointer}/text"))
    elif kind in ("context", "actions"):
        errors += _check_elements(block, pointer, limit=10 if kind == "context" else 25)
    return errors


def _check_section(block: JsonDict, pointer: str) -> list[str]:
    if "text" not in block and "fields" not in block:
        return [f"[ERROR] must provide either text or fields [json-pointer:{pointer}]"]
    errors: list[str] = []
    if "text" in block:
        errors += _check_text(block["text"], f"{pointer}/text", limit=3000)
    fields = block.get("fields", [])
    if not isinstance(fields, list) or len(fields) > 10:
        errors.append(f"[ERROR] no more than 10 items allowed [json-pointer:{pointer}/fields]")
    else:
        for i, item in enumerate(fields):
            errors += _check_text(item, f"{pointer}/fields/{i}", limit=2000)
    if "accessory" in block:
        errors += _check_element(block["accessory"], f"{pointer}/accessory")
    return errors


def _check_elements(block: JsonDict, pointer: str, *, limit: int) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [f"[ERROR] must provide at least 1 item [json-pointer:{pointer}/elements]"]
    if len(elements) > limit:
        return [f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}/elements]"]
    errors: list[str] = []
    for i, element in enumerate(elements):
        sub = f"{pointer}/elements/{i}"
        if isinstance(element, dict) and element.get("type") in _TEXT_TYPES:
            errors += _check_text(element, sub, limit=3000)
        elif block["type"] == "actions":
            errors += _check_element(element, sub)
    return errors


def validate_blocks(blocks: Any, *, max_blocks: int, pointer: str = "/blocks") -> list[str]:
    """Slack's server-side Block Kit checks; returns ``[ERROR] ... [json-pointer:...]`` lines."""
    if not isinstance(blocks, list):
        return [f"[ERROR] must provide an array [json-pointer:{pointer}]"]
    if len(blocks) > max_blocks:
        return [f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{pointer}]"]
    errors: list[str] = []
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        errors += _check_block(block, f"{pointer}/{i}")
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                errors.append(f"[ERROR] duplicate block_id [json-pointer:{pointer}/{i}/block_id]")
            seen.add(block_id)
    return errors


def block_texts(node: Any) -> Iterator[str]:
    """Every `text` string in a block tree, in order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from block_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from block_texts(item)


def visible_text(blocks: list[JsonDict]) -> str:
    """Every text string in the blocks, in order, one per line (what the reader sees)."""
    return "\n".join(block_texts(blocks))
