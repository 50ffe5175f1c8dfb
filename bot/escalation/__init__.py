"""Who is paged and when: responder pages with Acknowledge, secondaries, the management ladder (PM,
CTO, CEO, Board) on durable timers, contacts. Runbook: "Emergency Contact and Escalation".
"""

__all__ = ["contacts_view", "service", "views"]
