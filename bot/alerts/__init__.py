"""Alerts from monitoring systems: parse each source's webhook payload, authenticate it, map it to a trigger.

Parsing, auth and matching are pure and Slack-independent; intake turns alerts into incidents (answered on the
durable receipt), notes writes their timeline lines, silencing and triage are the header's and the triage
channel's buttons. Runbook: "Rollback Decision Criteria" (the triggers), "Step 1: Incident Detection and Alert".
"""

from bot.alerts.auth import MAX_BODY_BYTES, AlertAuth, AlertAuthError
from bot.alerts.matching import Match, NoMatch, dedup_key, match_trigger
from bot.alerts.model import AlertParseError, NormalizedAlert
from bot.alerts.parsers import PARSERS, parse

__all__ = ["MAX_BODY_BYTES", "PARSERS", "AlertAuth", "AlertAuthError", "AlertParseError", "Match", "NoMatch",
           "NormalizedAlert", "dedup_key", "match_trigger", "parse",
           # the modules the engine and the handlers use
           "auth", "intake", "matching", "model", "notes", "parsers", "silencing", "triage_view", "views"]
