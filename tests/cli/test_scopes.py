"""The scopes manifest.yml asks for are exactly the ones the code needs: derived from bot/slack/scopes.py's table
and a scan of every Web API call and Events API listener in bot/, handlers/ and actions/."""

from __future__ import annotations

import ast
import inspect
from functools import cache
from pathlib import Path

import slack_sdk.web.async_client
import yaml

from bot.slack.scopes import EVENT_SCOPES, FEATURE_SCOPES, METHOD_SCOPES, bot_scopes, required_scopes

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("bot", "handlers", "actions")
NOT_THE_BOT = ("bot/sandbox/",)  # the local Slack workspace answers the Web API, it does not call it
GENERIC_CALLERS = ("bot/slack/gateway.py", "bot/slack/client.py")  # `call(method)` / `api_call(method)` plumbing


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


@cache
def _sdk_methods() -> dict[str, frozenset[str]]:
    """AsyncWebClient method name -> the Web API methods it calls, read from slack_sdk's own source (so
    `files_upload_v2` is its two upload methods)."""
    tree = ast.parse(inspect.getsource(slack_sdk.web.async_client))
    direct: dict[str, set[str]] = {}
    calls: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        direct[node.name], calls[node.name] = set(), set()
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
                    isinstance(inner.func.value, ast.Name) and inner.func.value.id == "self":
                if inner.func.attr == "api_call" and inner.args and isinstance(inner.args[0], ast.Constant):
                    direct[node.name].add(inner.args[0].value)
                else:
                    calls[node.name].add(inner.func.attr)

    def resolve(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found = set(direct.get(name, ()))
        for other in calls.get(name, set()) - seen:
            found |= resolve(other, seen | {name})
        return found

    return {name: frozenset(resolve(name)) for name in direct if name != "api_call" and resolve(name)}


def _files() -> list[Path]:
    files = [p for d in SCANNED for p in (ROOT / d).rglob("*.py")]
    return [p for p in files if not str(p.relative_to(ROOT)).startswith(NOT_THE_BOT)]


def _receiver(node: ast.expr) -> str:
    return ast.unparse(node)


@cache
def _scan() -> tuple[dict[str, set[str]], dict[str, set[str]], list[str]]:
    """(Web API method -> where it is called, event -> where it is listened to, calls the scan cannot read)."""
    sdk = _sdk_methods()
    methods: dict[str, set[str]] = {}
    events: dict[str, set[str]] = {}
    unreadable: list[str] = []
    for path in _files():
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if isinstance(node, ast.Attribute) and node.attr in sdk and _receiver(node.value).endswith("client") \
                    and not isinstance(node.ctx, ast.Store):  # a client method handed on (People(client.users_info))
                for method in sdk[node.attr]:
                    methods.setdefault(method, set()).add(f"{rel}:{node.lineno}")
            if not isinstance(node, ast.Call):
                continue
            where = f"{rel}:{node.lineno}"
            func = node.func
            literal = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            if isinstance(func, ast.Name) and func.id == "say":  # Bolt's say() is chat.postMessage
                methods.setdefault("chat.postMessage", set()).add(where)
            if not isinstance(func, ast.Attribute):
                continue
            receiver = _receiver(func.value)
            if func.attr in ("call", "api_call") and receiver.endswith(("slack", "client", "super()")):
                if isinstance(literal, str):
                    methods.setdefault(literal, set()).add(where)
                elif rel not in GENERIC_CALLERS:
                    unreadable.append(where)
            elif func.attr in sdk:
                for method in sdk[func.attr]:
                    methods.setdefault(method, set()).add(where)
            elif func.attr in ("event", "message") and receiver.endswith(("bolt", "app")):
                if func.attr == "message":
                    unreadable.append(f"{where} (a message listener needs message.* events and *:history)")
                elif isinstance(literal, str):
                    events.setdefault(literal, set()).add(where)
                else:
                    unreadable.append(where)
    return methods, events, unreadable


def test_the_scan_reads_every_kind_of_call_the_code_makes() -> None:
    methods, events, unreadable = _scan()
    assert not unreadable, f"calls whose method the scan cannot read (use a literal method name): {unreadable}"
    # One of each form, so a scan that silently stops finding calls fails here rather than passing.
    assert any("gateway.py" in w for w in methods["chat.update"])  # client.chat_update
    assert any("warroom.py" in w for w in methods["conversations.create"])  # gateway call("...")
    assert any("resolution.py" in w for w in methods["files.completeUploadExternal"])  # files_upload_v2
    assert any("slack_events.py" in w for w in methods["chat.postMessage"])  # Bolt's say()
    assert any("slack_events.py" in w for w in events["app_mention"])


def test_the_scope_table_lists_exactly_the_methods_and_events_the_code_uses() -> None:
    methods, events, _ = _scan()
    assert set(methods) - set(METHOD_SCOPES) == set(), "called but not in bot/slack/scopes.py (add it, with its scope)"
    assert set(METHOD_SCOPES) - set(methods) == set(), "in the table but never called (remove it)"
    assert set(events) == set(EVENT_SCOPES)


def test_manifest_asks_for_exactly_the_scopes_the_code_needs() -> None:
    manifest = _manifest()
    methods, events, _ = _scan()
    features = [f for f in FEATURE_SCOPES if manifest["features"].get(f)]
    needed = required_scopes(methods, events, features)
    declared = set(manifest["oauth_config"]["scopes"]["bot"])
    assert needed - declared == set(), "missing from manifest.yml"
    assert declared - needed == set(), "asked for but never used"
    assert sorted(declared) == bot_scopes()


def test_manifest_subscribes_to_exactly_the_events_the_bot_listens_to() -> None:
    _, events, _ = _scan()
    assert set(_manifest()["settings"]["event_subscriptions"]["bot_events"]) == set(events)


def test_the_messages_tab_is_read_only_because_the_bot_does_not_read_dms() -> None:
    """The bot DMs pages (they show in its Messages tab) but does not listen to `message.im`: users may not type
    there, or their messages would go nowhere."""
    manifest = _manifest()
    home = manifest["features"]["app_home"]
    listens_to_dms = "message.im" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is not listens_to_dms
