"""Prometheus metrics, one registry per bot (so tests and several bots in one process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rollbot_slack_requests", "Requests from Slack by kind", ["kind"],
                                registry=self.registry)
        self.ack_seconds = Histogram("rollbot_slack_ack_seconds", "Time from receiving a Slack request to its answer",
                                     ["kind"], buckets=ACK_BUCKETS, registry=self.registry)
        self.slack_calls = Counter("rollbot_slack_api_calls", "Web API calls by method and outcome",
                                   ["method", "outcome"], registry=self.registry)
        self.ratelimited = Counter("rollbot_slack_ratelimited", "Web API calls answered 429", ["method"],
                                   registry=self.registry)
        self.alerts = Counter("rollbot_alerts", "Alerts received by source and outcome (opened, attached, resolved, "
                              "repeat, unmatched, refused)", ["source", "outcome"],
                              registry=self.registry)
        self.open_incidents = Gauge("rollbot_open_incidents", "Open incidents", registry=self.registry)
        self.executions = Gauge("rollbot_executions", "Action executions by state", ["state"], registry=self.registry)
        self.timer_lateness = Gauge("rollbot_timer_lateness_seconds_max", "Largest timer lateness seen",
                                    registry=self.registry)
        self.timer_lateness_seconds = Histogram(
            "rollbot_timer_lateness_seconds", "How late each timer's handler started after its due time", ["kind"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300), registry=self.registry)
        self.timer_retries = Counter("rollbot_timer_retries", "Timer handlers that failed and will run again",
                                     ["kind"], registry=self.registry)
        self.timer_failures = Counter("rollbot_timer_failures", "Timers given up after their last attempt",
                                      ["kind"], registry=self.registry)
        self.outbox_parked = Gauge("rollbot_outbox_parked", "Outbox rows and timers parked after their last attempt, "
                                   "waiting for a person to press Retry", registry=self.registry)
        self.slack_up = Gauge("rollbot_slack_up", "1 when Slack answered the last auth.test, else 0",
                              registry=self.registry)
        self.redis_up = Gauge("rollbot_redis_up", "1 while Redis answers; 0 while the bot works in-process",
                              registry=self.registry)
        self.redis_fallbacks = Counter("rollbot_redis_fallbacks", "Coordinator calls answered in-process because "
                                       "Redis was unreachable", registry=self.registry)
        self.duplicates = Counter("rollbot_slack_retries_ignored", "Retried Slack event deliveries ignored",
                                  registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
