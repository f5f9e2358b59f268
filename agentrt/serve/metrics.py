"""Prometheus metrics under vLLM's names with an `agentrt:` prefix.

Per-request counters and histograms are updated when a request finishes; the engine's
state (running/waiting requests, KV pages, prefix-cache hits by tier) is read at scrape
time. Latencies are on the engine's clock: wall seconds, or virtual seconds on `sim`.
Each app has its own registry, so several servers may share a process (tests).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.outputs import RequestOutput

_LATENCY_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0,
)  # fmt: skip
_TPOT_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip


class _EngineCollector:
    """Values read from the engine at each scrape."""

    def __init__(self, engine: LLMEngine, model: str) -> None:
        self.engine = engine
        self.model = model

    def collect(self) -> Iterator[Metric]:
        engine, kv, st = self.engine, self.engine.kv, self.engine.kv.stats
        gauge, counter = GaugeMetricFamily, CounterMetricFamily
        num_running = len(engine.batcher.running)
        # every unfinished request not in the running batch (queued or not yet drained)
        num_waiting = max(0, len(engine.requests) - num_running)
        total, used = kv.allocator.num_pages, kv.allocator.num_used
        table = [  # (family, name, help, value, or {tier: value} for a value per tier)
            (gauge, "num_requests_running", "Requests in the running batch.", num_running),
            (gauge, "num_requests_waiting", "Requests waiting to be scheduled.", num_waiting),
            (
                gauge,
                "kv_pages_used",
                "Device KV pages in use (running requests and the prefix cache).",
                used,
            ),
            (
                gauge,
                "kv_cache_usage_perc",
                "Fraction of device KV pages in use (1 = full).",
                used / total if total else 0.0,
            ),
            (
                counter,
                "prefix_cache_queries",
                "Prompt tokens looked up in the prefix cache.",
                st.prompt_tokens,
            ),
            (
                counter,
                "prefix_cache_hits",
                "Prompt tokens found in the prefix cache, by the tier they came from.",
                {"device": st.device_hit_tokens, "host": st.host_hit_tokens},
            ),
            (
                gauge,
                "prefix_cache_hit_rate",
                "Prefix-cache hits / queries since start, by tier.",
                {"device": st.device_hit_rate, "host": st.host_hit_rate},
            ),
            (
                gauge,
                "engine_clock_seconds",
                "The engine's clock (virtual seconds on the sim backend).",
                engine.clock.now(),
            ),
        ]
        for family, name, doc, value in table:
            if isinstance(value, dict):
                metric = family(f"agentrt:{name}", doc, labels=["model_name", "tier"])
                for tier, v in value.items():
                    metric.add_metric([self.model, tier], v)
            else:
                metric = family(f"agentrt:{name}", doc, labels=["model_name"])
                metric.add_metric([self.model], value)
            yield metric


class ServerMetrics:
    def __init__(self, engine: LLMEngine, model: str) -> None:
        self.registry = CollectorRegistry()
        self.model = model
        reg, lab = self.registry, ["model_name"]
        reg.register(_EngineCollector(engine, model))
        self.prompt_tokens = Counter(
            "agentrt:prompt_tokens", "Prompt tokens processed.", lab, registry=reg
        )
        self.generation_tokens = Counter(
            "agentrt:generation_tokens", "Tokens generated.", lab, registry=reg
        )
        self.request_success = Counter(
            "agentrt:request_success",
            "Requests finished, by finish reason.",
            ["model_name", "finished_reason"],
            registry=reg,
        )
        self.ttft = Histogram(
            "agentrt:time_to_first_token_seconds",
            "Time to first token.",
            lab,
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.tpot = Histogram(
            "agentrt:request_time_per_output_token_seconds",
            "Mean time per output token after the first, per request.",
            lab,
            buckets=_TPOT_BUCKETS,
            registry=reg,
        )
        self.e2e = Histogram(
            "agentrt:e2e_request_latency_seconds",
            "End-to-end request latency.",
            lab,
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.rejected = Counter(
            "agentrt:request_rejected",
            "Requests answered with an error before reaching the engine, by status.",
            ["model_name", "status"],
            registry=reg,
        )

        self.hints = Counter(
            "agentrt:request_hints",
            "Request hints received, by field and outcome (accepted, clipped, ignored).",
            ["model_name", "field", "outcome"],
            registry=reg,
        )
        self.learned_predictions = Counter(
            "agentrt:learned_graph_predictions",
            "Requests of agents on learned graphs, by whether the learned graph expected "
            "them within one step (hit), later (miss), or had no estimate (unknown).",
            ["model_name", "outcome"],
            registry=reg,
        )
        self.ste_updates = Counter(
            "agentrt:steps_to_execution_updates",
            "KVFlow-style steps-to-execution updates received (POST /v1/update).",
            lab,
            registry=reg,
        )
        self.workflows = Gauge(
            "agentrt:workflows_declared", "Declared workflows held.", lab, registry=reg
        )
        self.hinted_agents = Gauge(
            "agentrt:agents_with_steps_to_execution",
            "Agents whose steps-to-execution the KV manager was last given.",
            lab,
            registry=reg,
        )

    def hinted(self, outcome: dict[str, str]) -> None:
        for field, result in outcome.items():
            self.hints.labels(self.model, field, result.split(":")[0].split(" ")[0]).inc()

    def finished(self, out: RequestOutput) -> None:
        """Record one request (one choice) that ended."""
        m = self.model
        self.prompt_tokens.labels(m).inc(len(out.prompt_token_ids))
        self.generation_tokens.labels(m).inc(len(out.token_ids))
        self.request_success.labels(m, out.finish_reason or "abort").inc()
        if out.first_token_time is not None:
            self.ttft.labels(m).observe(out.first_token_time - out.arrival_time)
            if out.finish_time is not None and len(out.token_ids) > 1:
                span = out.finish_time - out.first_token_time
                self.tpot.labels(m).observe(span / (len(out.token_ids) - 1))
        if out.finish_time is not None:
            self.e2e.labels(m).observe(out.finish_time - out.arrival_time)

    def render(self) -> bytes:
        return generate_latest(self.registry)
