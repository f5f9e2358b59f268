"""Co-simulation of a world and R sim-backend engines in virtual time (no threads, no anyio).

A discrete-event loop over global virtual time ``T``:

1. ready units start at ``T``: each agent observes, plans its calls and submits its
   first call to its replica (`Router`: sticky, balanced); requests to a replica that is
   mid-step wait for its next step (continuous batching);
2. an idle replica with work steps at once (its clock first jumps to ``T``); the step's
   outputs become an event at the step's end time; events pop in time order (``T`` := the
   event time), so steps of different replicas interleave exactly as their clocks say;
3. a finished call submits the agent's next call, or ends its agent step; when every
   agent of a unit is done, each acts with the world's deterministic fallback
   (``world.act(obs, None)``: synthetic tokens carry no meaning, and this keeps the world
   hash equal to the no-LLM `simulate` one), its state is written and the scheduler told.

Before each step, a replica whose agents' schedule changed gets fresh steps-to-execution
hints (`agentrt.simulation.ste`) via ``engine.kv.update_hints``. Prompts are synthetic
token ids of faithful length (`SyntheticPrompts`); the persona is the fixed prefix.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

from agentrt.engine.config import EngineConfig, check_count
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams
from agentrt.scheduler.sim_modes import StepScheduler, TrueDeps
from agentrt.simulation.driver import SimResult, scheduler_for, world_hash
from agentrt.simulation.gc_passes import fewer_gc_passes
from agentrt.simulation.router import Router
from agentrt.simulation.ste import HintedScheduler, agent_key
from agentrt.simulation.synthetic_prompts import SyntheticPrompts
from agentrt.simulation.world import AgentStepPlan, Observation, World

# Llama-3-8B on a 24 GB L4: ~16.1 GB of weights, ~1.5 GB activations/graphs -> ~6.5 GB KV.
L4_KV_TOKENS = 49_152


@dataclass
class CosimConfig:
    """Replicas and engine limits of a co-simulation (one `EngineConfig` per replica).

    ``policy`` None: ``kvflow`` with a host tier (``host_kv_cache_tokens > 0``), else
    ``lru``. ``move_factor``: see `Router` (None: sticky only). ``max_tokens`` caps
    every call's output length (None: the plan's). ``implicit_decodes``: decoders advance as a
    group (`SimLLMEngine.implicit_decodes`); with it, ``fast_forward`` runs stretches of
    pure-decode steps in one call (`SimLLMEngine.fast_forward`). Same timeline either way.
    """

    profile: str = "l4-llama3-8b"
    replicas: int = 1
    kv_cache_tokens: int = L4_KV_TOKENS
    host_kv_cache_tokens: int = 0
    policy: str | None = None
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    prefetch_k: int = 1
    move_factor: float | None = None
    max_tokens: int | None = None  # cap on every call's max_tokens
    fast_forward: bool = True  # pure-decode stretches in one call (needs implicit_decodes)
    implicit_decodes: bool = True

    def __post_init__(self) -> None:
        self.replicas = check_count("CosimConfig.replicas", self.replicas, 1)
        if self.max_tokens is not None:
            self.max_tokens = check_count("CosimConfig.max_tokens", self.max_tokens, 1)
        if self.move_factor is not None and not (
            math.isfinite(self.move_factor) and self.move_factor >= 1
        ):
            raise ValueError(
                f"CosimConfig.move_factor must be a finite number >= 1, got {self.move_factor!r}"
            )
        self.engine_config()  # the engine's sizes fail here, before any replica starts

    @property
    def eviction_policy(self) -> str:
        if self.policy is not None:
            return self.policy
        return "kvflow" if self.host_kv_cache_tokens > 0 else "lru"

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            backend="sim",
            profile=self.profile,
            kv_cache_tokens=self.kv_cache_tokens,
            host_kv_cache_tokens=self.host_kv_cache_tokens,
            eviction_policy=self.eviction_policy,
            max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens,
            prefetch_k=self.prefetch_k,
        )


@dataclass
class _AgentStep:
    step: int
    obs: Observation
    plan: AgentStepPlan
    unit: list[int]
    next_call: int = 0
    said: list[int] = field(default_factory=list)  # output ids of finished history calls


class _Cosim:
    def __init__(self, world: World, sched: StepScheduler, steps: int, cfg: CosimConfig) -> None:
        self.world = world
        self.steps = steps
        self.max_tokens = cfg.max_tokens
        self.fast_forward = cfg.fast_forward and cfg.implicit_decodes
        self.fast_steps = 0
        self.engines = [LLMEngine.from_config(cfg.engine_config()) for _ in range(cfg.replicas)]
        for eng in self.engines:  # amortise eviction's tree scan: free 1/16 of the pool
            pages = eng.config.kv_capacity_tokens // eng.config.page_size
            eng.kv.min_evict_pages = max(1, pages // 16)
            eng.stream_outputs = False  # only finished calls matter here
            eng.implicit_decodes = cfg.implicit_decodes  # type: ignore[attr-defined]
        self.router = Router(cfg.replicas, move_factor=cfg.move_factor)
        n = world.num_agents
        self.keys = [agent_key(i) for i in range(n)]
        for k in self.keys:  # balanced up front, so hints reach every agent's replica
            self.router.assign(k)
        self.sched = HintedScheduler(sched, steps, self._schedule_changed)
        self.prompts = SyntheticPrompts()
        # prompts are synthetic ids plus ids the engine itself sampled: no per-token
        # conversion or range check needed where the vocabulary holds the synthetic ones
        bound = self.prompts.id_bound
        self.ids_checked = [e.vocab_size is None or bound <= e.vocab_size for e in self.engines]
        self.dirty = [True] * cfg.replicas
        self.in_step = [False] * cfg.replicas
        self.heap: list[tuple[float, int, int, list[RequestOutput]]] = []
        self.seq = 0
        self.now = 0.0
        self.active: dict[int, _AgentStep] = {}
        self.left: dict[int, int] = {}  # id(unit) -> agents still calling
        self.requests: dict[str, tuple[int, int, float]] = {}  # rid -> agent, replica, t0
        self.hashes: list[list[str]] = [[""] * n for _ in range(steps)]
        self.deps: dict[tuple[int, int], tuple[int, ...]] | None = None
        self.calls = self.agent_steps = self.hint_updates = 0
        self.busy = 0.0
        self._owned_cache: dict[tuple[int, int, int], list[int]] = {}
        self._params_cache: dict[int, SamplingParams] = {}

    def _schedule_changed(self, _: HintedScheduler) -> None:
        self.dirty = [True] * len(self.dirty)

    def _publish(self, r: int) -> None:
        kv = self.engines[r].kv
        if kv.reads_hints:
            ste = self.sched.ste(self._owned(r))
            kv.update_hints({self.keys[i]: v for i, v in ste.items()})
        else:  # the same publication, without computing values nobody reads
            kv.update_hints({})
        self.dirty[r] = False
        self.hint_updates += 1

    def _owned(self, r: int) -> list[int]:
        """Replica ``r``'s agents (cached until the router assigns or moves an agent)."""
        key = (r, self.router.moves, self.router.assigned[r])
        owned = self._owned_cache.get(key)
        if owned is None:
            owned = [int(k[5:]) for k in self.router.agents_of(r)]
            self._owned_cache[key] = owned
        return owned

    def _params(self, limit: int) -> SamplingParams:
        params = self._params_cache.get(limit)
        if params is None:  # frozen: one instance per limit is shared by all calls
            params = self._params_cache[limit] = SamplingParams(max_tokens=limit, ignore_eos=True)
        return params

    def _submit(self, i: int) -> None:
        st = self.active[i]
        call = st.plan.calls[st.next_call]
        r = self.router.route(self.keys[i])
        ids, prefix_len = self.prompts.build(st.plan.prefix, call.text)
        if call.history:  # the conversation so far follows the question
            ids = ids + st.said
        rid = f"{i}/{st.step}/{st.next_call}"
        limit = call.max_tokens
        if self.max_tokens is not None:
            limit = min(limit, self.max_tokens)
        self.engines[r].add_request(
            ids,
            self._params(limit),
            request_id=rid,
            agent_id=self.keys[i],
            prefix_len=prefix_len,
            ids_checked=self.ids_checked[r],
        )
        self.requests[rid] = (i, r, self.now)

    def _release(self) -> None:
        while units := self.sched.ready_units():  # units without calls finish at once
            self._start(units)

    def _start(self, units: list[list[int]]) -> None:
        for unit in units:
            self.sched.start(unit)
            self.left[id(unit)] = len(unit)
            for i in unit:
                s = self.sched.step_of(i)
                obs = self.world.observe(i, s)
                plan = self.world.plan(obs)
                if self.deps is not None:
                    self.deps[(i, s)] = obs.neighbor_ids
                self.active[i] = _AgentStep(s, obs, plan, unit)
                if plan.calls:
                    self._submit(i)
                else:
                    self._agent_done(i)

    def _agent_done(self, i: int) -> None:
        unit = self.active[i].unit
        self.left[id(unit)] -= 1
        if self.left[id(unit)]:
            return
        del self.left[id(unit)]
        world = self.world
        positions = []
        for j in unit:
            st = self.active.pop(j)
            world.apply(j, st.step, world.act(st.obs, None))
            self.hashes[st.step][j] = world.state_hash(j, st.step + 1)
            positions.append(world.position(j, st.step + 1))
        self.agent_steps += len(unit)
        self.sched.finish(unit, positions)

    def _kick(self, r: int, fast: bool = False) -> None:
        """Start replica ``r``'s next step if it is idle with work. ``fast``: it may
        fast-forward decode steps that start before the next pending event (callers kick
        every other replica first, so all pending events are in the heap)."""
        eng = self.engines[r]
        if self.in_step[r] or not eng.has_unfinished_requests():
            return
        if self.dirty[r]:
            self._publish(r)
        eng.clock.advance_to(self.now)  # type: ignore[attr-defined]
        if fast and self.fast_forward:
            until = self.heap[0][0] if self.heap else float("inf")
            finished: list[RequestOutput] = []  # the last step may finish calls
            n = eng.fast_forward(until, finished)  # type: ignore[attr-defined]
            if n:
                self.fast_steps += n
                self.in_step[r] = True
                heapq.heappush(self.heap, (eng.clock.now(), self.seq, r, finished))
                self.seq += 1
                return
        for _ in range(1000):
            before = (eng.stats.steps, eng.clock.now())
            outs = eng.step()
            if outs or (eng.stats.steps, eng.clock.now()) != before:
                break
        else:
            raise RuntimeError(f"replica {r} makes no progress (a prompt that never fits?)")
        self.in_step[r] = True
        heapq.heappush(self.heap, (eng.clock.now(), self.seq, r, outs))
        self.seq += 1

    def run(self) -> None:
        self._release()
        for r in range(len(self.engines)):
            self._kick(r)
        while self.heap:
            self.now, _, r, outs = heapq.heappop(self.heap)
            self.in_step[r] = False
            finished_unit = False
            for out in outs:
                if not out.finished:
                    continue
                i, r0, t0 = self.requests.pop(out.request_id)
                self.router.done(r0)
                self.busy += self.now - t0
                self.calls += 1
                st = self.active[i]
                if st.plan.calls[st.next_call].history:
                    st.said += out.token_ids
                st.next_call += 1
                if st.next_call < len(st.plan.calls):
                    self._submit(i)
                else:
                    before = self.agent_steps
                    self._agent_done(i)
                    finished_unit = finished_unit or self.agent_steps != before
            if finished_unit:
                self._release()
            in_step = self.in_step
            for q in range(len(self.engines)):
                if q != r and not in_step[q]:  # (a replica mid-step has nothing to start)
                    self._kick(q)
            self._kick(r, fast=True)
        if not self.sched.done():
            raise RuntimeError(f"mode {self.sched.name!r} stalled before {self.steps} steps")


def cosimulate(
    world: World,
    mode: str | StepScheduler,
    steps: int,
    config: CosimConfig | None = None,
    *,
    true_deps: TrueDeps | None = None,
    record_deps: bool = False,
) -> SimResult:
    """Run ``steps`` steps of a fresh ``world`` under ``mode`` on sim-engine replicas.

    ``makespan`` is virtual seconds; ``busy`` sums call latencies (submit to finish), so
    ``parallelism`` is mean calls in flight. ``extra`` holds calls per wall second and
    per-replica engine stats.
    """
    t0 = time.perf_counter()
    cfg = config or CosimConfig()
    sched = scheduler_for(world, mode, steps, true_deps)
    with fewer_gc_passes():
        sim = _Cosim(world, sched, steps, cfg)
        if record_deps:
            sim.deps = {}
        sim.run()
    wall = time.perf_counter() - t0
    stats = [e.stats for e in sim.engines]
    reused = sum(s.prefill_tokens_reused for s in stats)
    computed = sum(s.prefill_tokens_computed for s in stats)
    extra = {
        "backend": "sim",
        "profile": cfg.profile,
        "replicas": cfg.replicas,
        "policy": cfg.eviction_policy,
        "calls_per_wall_s": sim.calls / wall if wall else 0.0,
        "engine_steps": sum(s.steps for s in stats),
        "mean_batch": sum(sum(s.batch_sizes) for s in stats) / max(1, sum(s.steps for s in stats)),
        "prefix_hit_rate": reused / (reused + computed) if reused + computed else 0.0,
        "preemptions": sum(s.preemptions for s in stats),
        "calls_per_replica": list(sim.router.calls),
        "router_moves": sim.router.moves,
        "hint_updates": sim.hint_updates,
        "fast_forward_steps": sim.fast_steps,
    }
    return SimResult(
        sched.name,
        world.num_agents,
        steps,
        sim.now,
        sim.agent_steps,
        sim.calls,
        sim.busy,
        world_hash(sim.hashes),
        wall,
        sim.deps,
        extra,
    )
