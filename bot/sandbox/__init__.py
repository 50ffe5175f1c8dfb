"""A local Slack workspace that behaves like Slack toward the bot: Web API, limits, faults, signed deliveries."""

from bot.sandbox.server import SandboxServer

__all__ = ["SandboxServer", "scopes", "server", "workspace"]
