"""Alerts from monitoring systems: parse each source's webhook payload, authenticate it, map it to a trigger.

Pure and Slack-independent: the aiohttp routes and the incident engine call these functions.
"""

from bot.alerts.auth import MAX_BODY_BYTES, AlertAuth, AlertAuthError
from bot.alerts.matching import Match, NoMatch, dedup_key, match_trigger
from bot.alerts.model import AlertParseError, NormalizedAlert
from bot.alerts.parsers import PARSERS, parse

__all__ = ["MAX_BODY_BYTES", "PARSERS", "AlertAuth", "AlertAuthError", "AlertParseError", "Match", "NoMatch",
           "NormalizedAlert", "dedup_key", "match_trigger", "parse"]
