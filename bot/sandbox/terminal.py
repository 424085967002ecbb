"""Rendering Slack messages readably in a terminal (the sandbox): mrkdwn tokens become plain words
and every button gets a number the user can type."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)>")
_GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_EMOJI = re.compile(r":([a-z_]+):")
EMOJI = {
    "white_check_mark": "✅",
    "warning": "⚠️",
    "grey_question": "❔",
    "clipboard": "📋",
    "rotating_light": "🚨",
    "red_circle": "🔴",
    "white_circle": "⚪",
    "performing_arts": "🎭",
    "no_entry_sign": "🚫",
    "x": "❌",
    "sunny": "☀️",
    "speech_balloon": "💬",
    "eyes": "👀",
    "alarm_clock": "⏰",
    "adhesive_bandage": "🩹",
    "spiral_calendar_pad": "🗓️",
    "mega": "📣",
    "mag": "🔍",
    "large_orange_circle": "🟠",
    "large_blue_circle": "🔵",
    "information_source": "ℹ️",
    "hourglass": "⌛",
    "heavy_minus_sign": "➖",
    "fire_drill": "🧯",
    "briefcase": "💼",
    "boom": "💥",
    "arrow_double_up": "⏫",
}


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str
    block_id: str | None


def plain(text: str) -> str:
    """Slack mrkdwn → terminal text: mentions as @ID, dates and links as their labels."""
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _USER.sub(r"@\1", text)
    text = _GROUP.sub(r"@group:\1", text)
    text = _CHANNEL.sub(r"#\1", text)
    text = _SPECIAL.sub(r"@\1", text)
    text = _BOLD.sub(r"\1", text)
    text = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    return html.unescape(text)


def render_blocks(
    blocks: list[dict[str, Any]], *, fallback: str, first_number: int
) -> tuple[list[str], list[Button]]:
    """Lines to print and the buttons found, numbered from `first_number`."""
    if not blocks:
        return [plain(fallback)], []
    lines: list[str] = []
    buttons: list[Button] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {plain(block['text']['text'])} ==")
        elif kind == "section":
            if block.get("text"):
                lines.extend(plain(block["text"]["text"]).splitlines())
            for field in block.get("fields") or []:
                label, _, value = plain(field["text"]).partition("\n")
                lines.append(f"  {label.strip('*')}: {value}" if value else f"  {label}")
        elif kind == "context":
            lines.append(
                "  " + " · ".join(plain(e.get("text", "")) for e in block.get("elements", []))
            )
        elif kind == "divider":
            lines.append("  ----")
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                if element.get("type") != "button":
                    continue
                number = first_number + len(buttons)
                buttons.append(
                    Button(
                        element["text"]["text"],
                        element["action_id"],
                        element.get("value", ""),
                        block.get("block_id"),
                    )
                )
                labels.append(f"[{number}] {element['text']['text']}")
            lines.append("  " + "   ".join(labels))
    return lines, buttons
