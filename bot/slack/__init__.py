"""Slack's Web API from the bot's side: the gateway (keyed posts, retries), the prioritized call queue, rate
limits by tier, the scopes table and Block Kit helpers (escaping untrusted text).
"""

__all__ = ["blocks", "client", "gateway", "queue", "ratelimit", "scopes", "tiers"]
