"""Slack's Block Kit limits, checked on every message and view the sandbox receives (Slack answers
`invalid_blocks` naming the problem). Pure: blocks in, problems out."""

from __future__ import annotations

from typing import Any

MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
TEXT_LIMITS = {"section": 3000, "header": 150, "context_element": 2000, "field": 2000, "button": 75, "option": 75,
               "option_description": 75, "input_label": 2000, "placeholder": 150, "modal_title": 24,
               "modal_button": 24, "message_text": 40000}
ELEMENT_COUNTS = {"actions": 25, "context": 10, "fields": 10, "checkboxes": 10, "radio_buttons": 10,
                  "static_select": 100, "overflow": 5}
ID_LIMIT = 255
VALUE_LIMIT = 2000
KNOWN_BLOCKS = {"section", "divider", "header", "context", "actions", "input", "image", "rich_text", "file", "video",
                "markdown"}


def check_message(blocks: Any) -> list[str]:
    return _check_blocks(blocks, MESSAGE_BLOCKS, surface="message")


def check_view(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["view must be an object"]
    problems = []
    if view.get("type") not in ("modal", "home"):
        problems.append("view.type must be modal or home")
    if view.get("type") == "modal":
        title = _text(view.get("title"))
        if title is None:
            problems.append("modal title is required")
        elif len(title) > TEXT_LIMITS["modal_title"]:
            problems.append(f"modal title must be at most 24 characters (got {len(title)})")
        for key in ("submit", "close"):
            text = _text(view.get(key))
            if text is not None and len(text) > TEXT_LIMITS["modal_button"]:
                problems.append(f"modal {key} must be at most 24 characters")
        if len(str(view.get("private_metadata", ""))) > 3000:
            problems.append("private_metadata must be at most 3000 characters")
        if len(str(view.get("callback_id", ""))) > ID_LIMIT:
            problems.append("callback_id must be at most 255 characters")
    return problems + _check_blocks(view.get("blocks"), MODAL_BLOCKS, surface=str(view.get("type")))


def _text(obj: Any) -> str | None:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    if isinstance(obj, str):
        return obj
    return None


def _check_blocks(blocks: Any, max_blocks: int, surface: str) -> list[str]:
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} blocks are allowed (got {len(blocks)})")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCKS:
            problems.append(f"{where}: unknown block type {block.get('type') if isinstance(block, dict) else block!r}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > ID_LIMIT:
                problems.append(f"{where}.block_id must be at most 255 characters")
            if block_id in block_ids:
                problems.append(f"{where}.block_id {block_id!r} is not unique")
            block_ids.add(block_id)
        if block["type"] == "input" and surface == "message":
            problems.append(f"{where}: input blocks are only allowed in views")
        problems += _check_block(block, where, action_ids)
    return problems


def _limit(problems: list[str], where: str, text: str | None, kind: str) -> None:
    if text is not None and len(text) > TEXT_LIMITS[kind]:
        problems.append(f"{where} must be at most {TEXT_LIMITS[kind]} characters (got {len(text)})")


def _check_block(block: dict[str, Any], where: str, action_ids: set[str]) -> list[str]:
    problems: list[str] = []
    kind = block["type"]
    if kind == "section":
        text = _text(block.get("text"))
        fields = block.get("fields") or []
        if text is None and not fields:
            problems.append(f"{where}: a section needs text or fields")
        _limit(problems, f"{where}.text", text, "section")
        if len(fields) > ELEMENT_COUNTS["fields"]:
            problems.append(f"{where}.fields: no more than 10 fields")
        for j, f in enumerate(fields):
            _limit(problems, f"{where}.fields[{j}]", _text(f), "field")
        if block.get("accessory"):
            problems += _check_element(block["accessory"], f"{where}.accessory", action_ids)
    elif kind == "header":
        _limit(problems, f"{where}.text", _text(block.get("text")), "header")
        if (block.get("text") or {}).get("type") != "plain_text":
            problems.append(f"{where}.text must be plain_text")
    elif kind == "context":
        elements = block.get("elements") or []
        if not elements or len(elements) > ELEMENT_COUNTS["context"]:
            problems.append(f"{where}.elements: 1 to 10 elements")
        for j, e in enumerate(elements):
            _limit(problems, f"{where}.elements[{j}]", _text(e), "context_element")
    elif kind == "actions":
        elements = block.get("elements") or []
        if not elements or len(elements) > ELEMENT_COUNTS["actions"]:
            problems.append(f"{where}.elements: 1 to 25 elements")
        for j, e in enumerate(elements):
            problems += _check_element(e, f"{where}.elements[{j}]", action_ids)
    elif kind == "input":
        _limit(problems, f"{where}.label", _text(block.get("label")), "input_label")
        if not isinstance(block.get("element"), dict):
            problems.append(f"{where}.element is required")
        else:
            problems += _check_element(block["element"], f"{where}.element", action_ids)
    return problems


def _check_element(element: Any, where: str, action_ids: set[str]) -> list[str]:
    problems: list[str] = []
    if not isinstance(element, dict):
        return [f"{where} must be an object"]
    action_id = element.get("action_id")
    if action_id is not None and len(str(action_id)) > ID_LIMIT:
        problems.append(f"{where}.action_id must be at most 255 characters")
    kind = element.get("type")
    if kind == "button":
        _limit(problems, f"{where}.text", _text(element.get("text")), "button")
        if len(str(element.get("value", ""))) > VALUE_LIMIT:
            problems.append(f"{where}.value must be at most 2000 characters")
        if element.get("url") and len(str(element["url"])) > 3000:
            problems.append(f"{where}.url must be at most 3000 characters")
    options = element.get("options")
    if options is not None:
        limit = ELEMENT_COUNTS.get(str(kind), 100)
        if len(options) > limit:
            problems.append(f"{where}.options: no more than {limit} options (got {len(options)})")
        for j, option in enumerate(options):
            _limit(problems, f"{where}.options[{j}].text", _text(option.get("text")), "option")
            if len(str(option.get("value", ""))) > 150:
                problems.append(f"{where}.options[{j}].value must be at most 150 characters")
    placeholder = _text(element.get("placeholder"))
    _limit(problems, f"{where}.placeholder", placeholder, "placeholder")
    return problems
