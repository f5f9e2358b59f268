"""Co-simulation of a world and R sim-backend engines in virtual time (no threads, no anyio).

`CosimEngines` is the `UnitLoop` executor, a discrete-event pump over virtual time ``T``:

1. a started unit's agents submit their first call to their replica (`Router`) at ``T``;
   a unit whose agents plan no call is done at once;
2. an idle replica with work steps at once (its clock jumps to ``T``); the step's outputs
   become an event at its end time, and events pop in time order (``T`` := event time);
3. a finished call submits the agent's next call; the units an event completes go back
   to the loop together (agents act with the deterministic fallback, so the world hash is
   the no-LLM `simulate` one), and the replicas are kicked again.

Before each step, a replica whose agents' schedule changed gets fresh steps-to-execution
hints (`agentrt.simulation.ste`). Prompts are `SyntheticPrompts`; the persona is the prefix.
"""

from __future__ import annotations

import heapq
import sys
import time
from typing import Any

from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams
from agentrt.scheduler.sim_modes import StepScheduler, TrueDeps
from agentrt.simulation.cosim_config import CosimConfig
from agentrt.simulation.gc_passes import fewer_gc_passes
from agentrt.simulation.result import SimResult
from agentrt.simulation.router import Router
from agentrt.simulation.ste import HintedScheduler, agent_key
from agentrt.simulation.synthetic_prompts import SyntheticPrompts
from agentrt.simulation.unit_loop import AgentStep, Unit, UnitLoop, scheduler_for
from agentrt.simulation.world import World


class CosimEngines:
    """`UnitExecutor` over ``cfg.replicas`` sim engines. ``sched`` wraps the given
    scheduler so that schedule changes mark the hints stale: the loop must run on it.
    ``now`` is virtual seconds; ``busy`` sums call latencies (submit to finish)."""

    def __init__(self, num_agents: int, sched: StepScheduler, steps: int, cfg: CosimConfig) -> None:
        self.token_cap = cfg.max_tokens or sys.maxsize  # on every call's max_tokens
        self.fast_forward = cfg.fast_forward and cfg.implicit_decodes
        self.fast_steps = 0
        self.engines = [LLMEngine.from_config(cfg.engine_config()) for _ in range(cfg.replicas)]
        for eng in self.engines:  # amortise eviction's tree scan: free 1/16 of the pool
            pages = eng.config.kv_capacity_tokens // eng.config.page_size
            eng.kv.min_evict_pages = max(1, pages // 16)
            eng.stream_outputs = False  # only finished calls matter here
            eng.implicit_decodes = cfg.implicit_decodes  # type: ignore[attr-defined]
        self.router = Router(cfg.replicas, move_factor=cfg.move_factor)
        self.keys = [agent_key(i) for i in range(num_agents)]
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
        self.last = -1  # replica of the event `wait` returned last (-1: none yet)
        self.active: dict[int, AgentStep] = {}  # agents whose calls run
        self.next_call = [0] * num_agents  # per active agent: its plan's next call
        self.said: list[list[int]] = [[] for _ in range(num_agents)]  # history outputs' ids
        self.requests: dict[str, tuple[int, int, float]] = {}  # rid -> agent, replica, t0
        self.calls = self.hint_updates = 0
        self.busy = 0.0
        self._params_cache: dict[int, SamplingParams] = {}

    def start(self, unit: Unit) -> bool:
        for st in unit.steps:
            i = st.agent
            self.active[i] = st
            self.next_call[i] = 0
            if st.plan.calls:
                self.said[i].clear()
                self._submit(i)
            else:
                self._agent_done(i)
        return unit.left > 0

    def wait(self) -> list[Unit] | None:
        self._kick_all(self.last)
        heap = self.heap
        while heap:
            self.now, _, r, outs = heapq.heappop(heap)
            self.in_step[r] = False
            finished = self._take(outs)
            if finished:
                self.last = r
                return finished
            self._kick_all(r)
        return None

    def _take(self, outs: list[RequestOutput]) -> list[Unit]:
        """Submit the next call of each agent whose call finished in ``outs``; returns the
        units this completes, in completion order."""
        finished: list[Unit] = []
        for out in outs:
            if not out.finished:
                continue
            i, r0, t0 = self.requests.pop(out.request_id)
            self.router.done(r0)
            self.busy += self.now - t0
            self.calls += 1
            st = self.active[i]
            k = self.next_call[i]
            if st.plan.calls[k].history:
                self.said[i] += out.token_ids
            k += 1
            self.next_call[i] = k
            if k < len(st.plan.calls):
                self._submit(i)
            elif self._agent_done(i):
                finished.append(st.unit)
        return finished

    def _agent_done(self, i: int) -> bool:
        """Agent ``i`` has no calls left; True when that completes its unit."""
        unit = self.active.pop(i).unit
        unit.left -= 1
        return not unit.left

    def _submit(self, i: int) -> None:
        st = self.active[i]
        k = self.next_call[i]
        call = st.plan.calls[k]
        r = self.router.route(self.keys[i])
        ids, prefix_len = self.prompts.build(st.plan.prefix, call.text)
        if call.history:  # the conversation so far follows the question
            ids = ids + self.said[i]
        rid = f"{i}/{st.step}/{k}"
        self.engines[r].add_request(
            ids,
            self._params(min(call.max_tokens, self.token_cap)),
            request_id=rid,
            agent_id=self.keys[i],
            prefix_len=prefix_len,
            ids_checked=self.ids_checked[r],
        )
        self.requests[rid] = (i, r, self.now)

    def _params(self, limit: int) -> SamplingParams:
        params = self._params_cache.get(limit)
        if params is None:  # one frozen instance per limit: ~6% of the simulator-speed run
            params = self._params_cache[limit] = SamplingParams(max_tokens=limit, ignore_eos=True)
        return params

    def _kick_all(self, r: int) -> None:
        """Kick every idle replica; after an event of replica ``r`` (-1: none yet), the
        others first and ``r`` last, allowed to fast-forward."""
        in_step = self.in_step
        for q in range(len(self.engines)):
            if q != r and not in_step[q]:  # (a replica mid-step has nothing to start)
                self._kick(q)
        if r >= 0:
            self._kick(r, fast=True)

    def _kick(self, r: int, fast: bool = False) -> None:
        """Start replica ``r``'s next step if it is idle with work. ``fast``: it may
        fast-forward decode steps that start before the next pending event."""
        eng = self.engines[r]
        if self.in_step[r] or not eng.has_unfinished_requests():
            return
        if self.dirty[r]:
            self._publish(r)
        eng.clock.advance_to(self.now)
        outs: list[RequestOutput] = []  # a fast-forward's last step may finish calls
        stretch = 0
        if fast and self.fast_forward:
            until = self.heap[0][0] if self.heap else float("inf")
            stretch = eng.fast_forward(until, outs)  # type: ignore[attr-defined]
            self.fast_steps += stretch
        if not stretch:
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

    def _schedule_changed(self, _: HintedScheduler) -> None:
        self.dirty = [True] * len(self.dirty)

    def _publish(self, r: int) -> None:
        kv = self.engines[r].kv
        if kv.reads_hints:
            ste = self.sched.ste([int(k[5:]) for k in self.router.agents_of(r)])
            kv.update_hints({self.keys[i]: v for i, v in ste.items()})
        else:  # the same publication, without computing values nobody reads
            kv.update_hints({})
        self.dirty[r] = False
        self.hint_updates += 1

    def stats(self, wall_s: float) -> dict[str, Any]:
        """`SimResult.extra` of a run that took ``wall_s`` wall seconds."""
        stats = [e.stats for e in self.engines]
        reused = sum(s.prefill_tokens_reused for s in stats)
        computed = sum(s.prefill_tokens_computed for s in stats)
        steps = sum(s.steps for s in stats)
        return {
            "calls_per_wall_s": self.calls / wall_s if wall_s else 0.0,
            "engine_steps": steps,
            "mean_batch": sum(sum(s.batch_sizes) for s in stats) / max(1, steps),
            "prefix_hit_rate": reused / (reused + computed) if reused + computed else 0.0,
            "preemptions": sum(s.preemptions for s in stats),
            "calls_per_replica": list(self.router.calls),
            "router_moves": self.router.moves,
            "hint_updates": self.hint_updates,
            "fast_forward_steps": self.fast_steps,
        }


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
    ``makespan`` is virtual seconds, ``parallelism`` mean calls in flight; ``extra`` holds
    calls per wall second and the engines' stats."""
    t0 = time.perf_counter()
    cfg = config or CosimConfig()
    sched = scheduler_for(world, mode, steps, true_deps)
    with fewer_gc_passes():
        sim = CosimEngines(world.num_agents, sched, steps, cfg)
        loop = UnitLoop(world, sim.sched, steps, record_deps=record_deps)
        loop.run(sim)
    wall = time.perf_counter() - t0
    extra = {
        "backend": "sim",
        "profile": cfg.profile,
        "replicas": cfg.replicas,
        "policy": cfg.eviction_policy,
        **sim.stats(wall),
    }
    return loop.result(sim.now, sim.calls, sim.busy, wall, extra)
