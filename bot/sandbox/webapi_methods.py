"""The dispatch table: every Web API method the sandbox answers, by its Slack name, bound to one WebApi.
A method the table lacks answers `unknown_method`; each one also needs its scopes in scopes.ACCEPTED."""

from __future__ import annotations

import functools

from bot.sandbox import webapi_chat, webapi_conversations, webapi_files, webapi_users, webapi_views
from bot.sandbox.webapi import Handler, Method, WebApi

FAMILIES: tuple[dict[str, Method], ...] = (webapi_users.METHODS, webapi_chat.METHODS, webapi_conversations.METHODS,
                                           webapi_views.METHODS, webapi_files.METHODS)


def dispatch(api: WebApi) -> dict[str, Handler]:
    return {name: functools.partial(method, api) for family in FAMILIES for name, method in family.items()}
