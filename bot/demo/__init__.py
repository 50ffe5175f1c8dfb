"""`rollbot demo`: a whole incident in the sandbox, driven by simulated responders."""

from bot.demo.runner import run_demo

__all__ = ["run_demo", "stack"]
