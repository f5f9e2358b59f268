"""Prometheus metrics under vLLM's names with an `agentrt:` prefix.

Per-request counters and histograms are updated when a request finishes; the engine's
state (running/waiting requests, KV pages, prefix-cache hits by tier) is read at scrape
time. Latencies are on the engine's clock: wall seconds, or virtual seconds on `sim`.
Each app has its own registry, so several servers may share a process (tests).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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

    def collect(self):
        engine, labels = self.engine, [self.model]
        batcher, kv = engine.batcher, engine.kv
        running = GaugeMetricFamily(
            "agentrt:num_requests_running", "Requests in the running batch.", labels=["model_name"]
        )
        num_running = len(batcher.running)
        running.add_metric(labels, num_running)
        yield running
        waiting = GaugeMetricFamily(
            "agentrt:num_requests_waiting",
            "Requests waiting to be scheduled.",
            labels=["model_name"],
        )
        # every unfinished request not in the running batch (queued or not yet drained)
        waiting.add_metric(labels, max(0, len(engine.requests) - num_running))
        yield waiting
        total, used = kv.allocator.num_pages, kv.allocator.num_used
        pages = GaugeMetricFamily(
            "agentrt:kv_pages_used",
            "Device KV pages in use (running requests and the prefix cache).",
            labels=["model_name"],
        )
        pages.add_metric(labels, used)
        yield pages
        usage = GaugeMetricFamily(
            "agentrt:kv_cache_usage_perc",
            "Fraction of device KV pages in use (1 = full).",
            labels=["model_name"],
        )
        usage.add_metric(labels, used / total if total else 0.0)
        yield usage
        st = kv.stats
        queries = CounterMetricFamily(
            "agentrt:prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache.",
            labels=["model_name"],
        )
        queries.add_metric(labels, st.prompt_tokens)
        yield queries
        hits = CounterMetricFamily(
            "agentrt:prefix_cache_hits",
            "Prompt tokens found in the prefix cache, by the tier they came from.",
            labels=["model_name", "tier"],
        )
        hits.add_metric([self.model, "device"], st.device_hit_tokens)
        hits.add_metric([self.model, "host"], st.host_hit_tokens)
        yield hits
        rate = GaugeMetricFamily(
            "agentrt:prefix_cache_hit_rate",
            "Prefix-cache hits / queries since start, by tier.",
            labels=["model_name", "tier"],
        )
        rate.add_metric([self.model, "device"], st.device_hit_rate)
        rate.add_metric([self.model, "host"], st.host_hit_rate)
        yield rate
        clock = GaugeMetricFamily(
            "agentrt:engine_clock_seconds",
            "The engine's clock (virtual seconds on the sim backend).",
            labels=["model_name"],
        )
        clock.add_metric(labels, engine.clock.now())
        yield clock


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
