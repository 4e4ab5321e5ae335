"""`GET /metrics`: the controller in Prometheus' text format (prometheus-client), bearer token as for
`/api`. Read at scrape time, nothing kept: the ACD's statistics (`acd.stats.Stats`: queue figures
labelled `queue` and `period` = day | window, queues' agents by `state`, agents' states and day) and
the controller's health figures (live calls, CDR backlog, ARI connection).

The queue figures of a period are gauges: the day's start again at midnight and the window slides,
so Prometheus' counter semantics (only up, except restarts) do not fit them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivrpowers.acd.model import AGENT_STATES
from ivrpowers.acd.stats_periods import COUNTS
from ivrpowers.web.openapi import Api
from ivrpowers.web.stats_api import LiveAcd

__all__ = ["AcdCollector", "add_metrics_route"]

Health = Callable[[], Mapping[str, object]]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes

# Health figure -> (metric, help). Booleans are 0/1.
_HEALTH = {
    "active_calls": ("ivrpowers_calls_active", "Calls in progress"),
    "cdr_backlog": ("ivrpowers_cdr_backlog", "CDR writes waiting for the database"),
    "cdr_write_failures": ("ivrpowers_cdr_write_failures", "CDR write attempts that failed in a row"),
    "ari_connected": ("ivrpowers_ari_connected", "1 when the ARI events websocket is connected"),
    "loop_lag_ms": ("ivrpowers_event_loop_lag_ms", "How late the event loop ran its timer, worst of the last 10 s"),
}
# Counts since the controller started (Prometheus adds `_total`).
_HEALTH_COUNTERS = {
    "loop_stalls": ("ivrpowers_event_loop_stalls", "Times the event loop was 0.5 s or more late"),
}
# Period figure -> (metric suffix, help). Counts first, then seconds and ratios (absent when None).
_PERIOD = {
    **{name: (name, f"Tasks: {name.replace('_', ' ')} in the period") for name in COUNTS},
    "service_level": ("service_level_ratio", "Answered within sla_seconds / waits ended"),
    "abandon_rate": ("abandon_ratio", "Abandoned / waits ended"),
    "asa": ("asa_seconds", "Average wait of the answered"),
    "aht": ("aht_seconds", "Average talk and wrap-up of the handled"),
    "abandoned_wait_avg": ("abandoned_wait_avg_seconds", "Average wait before an abandon"),
    "abandoned_wait_max": ("abandoned_wait_max_seconds", "Longest wait before an abandon"),
    "talk_time": ("talk_seconds", "Talk time of the handled"),
    "wrap_up_time": ("wrap_up_seconds", "Wrap-up time after the queue's tasks"),
}
_LIVE = {
    "waiting": ("ivrpowers_queue_waiting", "Tasks waiting now"),
    "longest_wait": ("ivrpowers_queue_longest_wait_seconds", "How long the oldest waiting task has waited"),
    "talking": ("ivrpowers_queue_talking", "Tasks answered and not over"),
    "callbacks_waiting": ("ivrpowers_queue_callbacks_waiting", "Parked tasks waiting for their callback"),
}
_AGENT_DAY = {
    "handled": ("ivrpowers_agent_handled", "Tasks handled today"),
    "talk_time": ("ivrpowers_agent_talk_seconds", "Talk time today"),
    "wrap_up_time": ("ivrpowers_agent_wrap_up_seconds", "Wrap-up time today"),
    "offers": ("ivrpowers_agent_offers", "Offers rung today"),
    "declined": ("ivrpowers_agent_declined", "Offers declined today"),
    "not_answered": ("ivrpowers_agent_not_answered", "Offers that rang out today"),
}


class AcdCollector(Collector):
    """Every figure, read when Prometheus scrapes."""

    def __init__(self, health: Health, live: LiveAcd | None) -> None:
        self.health, self.live = health, live

    def collect(self) -> Iterator[Metric]:
        report = self.health()
        for key, (name, text) in _HEALTH.items():
            value = report.get(key)
            if isinstance(value, int | float):  # bool is an int: 0 or 1
                yield GaugeMetricFamily(name, text, value=float(value))
        for key, (name, text) in _HEALTH_COUNTERS.items():
            if isinstance(value := report.get(key), int | float):
                yield CounterMetricFamily(name, text, value=float(value))
        yield GaugeMetricFamily("ivrpowers_healthy", "1 when /health says ok",
                                value=float(report.get("status") == "ok"))
        if self.live is not None:
            yield from self._acd(self.live)

    def _acd(self, live: LiveAcd) -> Iterator[Metric]:
        now = live.clock()
        queues, agents = live.stats.queues(now), live.stats.agents(now)
        for key, (name, text) in _LIVE.items():
            family = GaugeMetricFamily(name, text, labels=["queue"])
            for queue, figures in queues.items():
                family.add_metric([queue], float(figures[key]))
            yield family
        family = GaugeMetricFamily("ivrpowers_queue_agents", "The queue's agents in each state",
                                   labels=["queue", "state"])
        for queue, figures in queues.items():
            for state, count in figures["agents"].items():
                family.add_metric([queue, state], float(count))
        yield family
        for key, (suffix, text) in _PERIOD.items():
            family = GaugeMetricFamily(f"ivrpowers_queue_{suffix}", f"{text} (period: day or window)",
                                       labels=["queue", "period"])
            for queue, figures in queues.items():
                for period in ("day", "window"):
                    value = figures[period][key]
                    if value is not None:
                        family.add_metric([queue, period], float(value))
            yield family
        family = GaugeMetricFamily("ivrpowers_agent_state", "1 for the state the agent is in",
                                   labels=["agent", "state"])
        for agent_id, agent in agents.items():
            for state in AGENT_STATES:
                family.add_metric([agent_id, state], float(agent["state"] == state))
        yield family
        family = GaugeMetricFamily("ivrpowers_agent_state_seconds", "Time in the current state", labels=["agent"])
        for agent_id, agent in agents.items():
            if agent["time_in_state"] is not None:
                family.add_metric([agent_id], float(agent["time_in_state"]))
        yield family
        for key, (name, text) in _AGENT_DAY.items():
            family = GaugeMetricFamily(name, text, labels=["agent"])
            for agent_id, agent in agents.items():
                family.add_metric([agent_id], float(agent["day"][key]))
            yield family


def add_metrics_route(api: Api, health: Health, live: LiveAcd | None) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AcdCollector(health, live))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    api.add("GET", "/metrics", metrics, returns={200: None},
            summary="Prometheus metrics (text format 0.0.4): queues, agents, live calls, CDR backlog")
