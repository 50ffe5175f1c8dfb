"""The Web API's people methods: who the token is (auth.test), users.* and usergroups.*."""

from __future__ import annotations

from typing import Any

from bot.sandbox.webapi import Call, Method, SlackError, WebApi, flag, page


async def auth_test(api: WebApi, call: Call) -> dict[str, Any]:
    return {"url": f"{api.base_url()}/", "team": api.ws.team_name, "user": api.ws.bot.name,
            "team_id": api.ws.team_id, "user_id": api.ws.bot.id, "bot_id": api.ws.bot_id,
            "is_enterprise_install": False}


async def info(api: WebApi, call: Call) -> dict[str, Any]:
    user = api.ws.users.get(call.str("user"))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user.to_api() | {"team_id": api.ws.team_id}}


async def list_users(api: WebApi, call: Call) -> dict[str, Any]:
    return page(call, [u.to_api() | {"team_id": api.ws.team_id} for u in api.ws.users.values()], "members")


async def lookup_by_email(api: WebApi, call: Call) -> dict[str, Any]:
    email = call.str("email").lower()
    user = next((u for u in api.ws.users.values() if u.email.lower() == email and not u.deleted), None)
    if user is None:
        raise SlackError("users_not_found")
    return {"user": user.to_api() | {"team_id": api.ws.team_id}}


async def list_groups(api: WebApi, call: Call) -> dict[str, Any]:
    """Every user group, in no particular order; `users` only with include_users, `user_count` only with
    include_count (api.slack.com/methods/usergroups.list). The sandbox has no disabled groups."""
    include_users, include_count = flag(call, "include_users"), flag(call, "include_count")
    groups = []
    for group_id, group in api.ws.groups.items():
        entry: dict[str, Any] = {
            "id": group_id, "team_id": api.ws.team_id, "is_usergroup": True, "is_subteam": True,
            "name": group["name"], "description": group.get("description", ""), "handle": group["handle"],
            "is_external": False, "date_create": 0, "date_update": 0, "date_delete": 0, "auto_type": None,
            "created_by": api.ws.bot.id, "updated_by": api.ws.bot.id, "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
        }
        if include_users:
            entry["users"] = list(group["users"])
        if include_count:
            entry["user_count"] = len(group["users"])
        groups.append(entry)
    return {"usergroups": groups}


async def group_members(api: WebApi, call: Call) -> dict[str, Any]:
    group = api.ws.groups.get(call.str("usergroup"))
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group["users"])}


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "users.info": info,
    "users.list": list_users,
    "users.lookupByEmail": lookup_by_email,
    "usergroups.list": list_groups,
    "usergroups.users.list": group_members,
}
