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
        self.alerts = Counter("rollbot_alerts", "Alert webhook requests by source and answer", ["source", "status"],
                              registry=self.registry)
        self.open_incidents = Gauge("rollbot_open_incidents", "Open incidents", registry=self.registry)
        self.executions = Gauge("rollbot_executions", "Action executions by state", ["state"], registry=self.registry)
        self.timer_lateness = Gauge("rollbot_timer_lateness_seconds_max", "Largest timer lateness seen",
                                    registry=self.registry)
        self.duplicates = Counter("rollbot_slack_retries_ignored", "Retried Slack event deliveries ignored",
                                  registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
