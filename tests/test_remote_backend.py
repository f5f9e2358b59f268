"""`backend="openai"`: the runtime on a real HTTP server (`agentrt serve` on the tiny chat
model, in a thread), against the same workflow in process: identical greedy outputs, the
agent hints arriving at the server, retries on 503, and a call that fails (bad request,
server gone) failing only its own workflow."""

from __future__ import annotations

import socket

import anyio
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt import Workflow
from agentrt.api import open_runtime
from agentrt.remote.server_kind import detect


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("remote") / "tinychat")


def _workflow() -> Workflow:
    wf = Workflow("remote-pipeline")

    @wf.agent(prefix="You are a planner. " * 6, max_tokens=8)
    async def planner(ctx):
        return await ctx.gen(f"Plan: {ctx.input}")

    @wf.agent(prefix="You are a coder. " * 6, after=[planner], max_tokens=8)
    async def coder(ctx):
        return await ctx.gen(f"Code for: {ctx.results['planner']}")

    return wf


INPUTS = ["reverse a string", "add two numbers", "sort a list"]


async def _run(**options) -> list[dict]:
    async with open_runtime(**options) as rt:
        handles = [rt.submit(_workflow(), x) for x in INPUTS]
        return [dict((await h.wait()).results) for h in handles]


def _engine_options(model_dir) -> dict:
    return {"model": str(model_dir), "dtype": "float32", "page_size": 4, "kv_cache_tokens": 8192}


def test_outputs_match_the_in_process_backend_and_hints_arrive(model_dir):
    local = anyio.run(lambda: _run(**_engine_options(model_dir)))
    engine = make_engine(model_dir, kv_cache_tokens=8192, eviction_policy="kvflow")
    with ServerThread(engine) as server:
        remote = anyio.run(
            lambda: _run(backend="openai", base_url=server.base_url, tokenizer=str(model_dir))
        )
        metrics = server.get("/metrics").text
    assert remote == local
    # agent ids and fixed prefixes arrived: the prefixes are tagged, hints counted
    assert 'agentrt:request_hints_total{field="agent_id"' in metrics
    assert 'field="prefix_len"' in metrics
    assert {"remote-pipeline/planner", "remote-pipeline/coder"} <= set(engine.kv.agent_prefixes)
    updates = [
        line
        for line in metrics.splitlines()
        if line.startswith("agentrt:steps_to_execution_updates_total")
    ]
    assert float(updates[0].split()[-1]) > 0  # the runtime's STE came through /v1/update
    engine.check_integrity()


def test_server_kinds_are_detected():
    assert detect({"data": [{"id": "m", "owned_by": "vllm"}]}, {}) == "vllm"
    assert detect({"data": [{"id": "m", "owned_by": "agentrt"}]}, {}) == "agentrt"
    assert detect({"data": [{"id": "m", "owned_by": "openai"}]}, {}) == "generic"
    # each kind's request fields: tests/test_remote_fields.py


def test_an_unreachable_server_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(Exception, match="cannot reach"):
        anyio.run(lambda: _run(backend="openai", base_url=f"http://127.0.0.1:{port}"))


def test_a_failing_call_fails_only_its_workflow(model_dir):
    """A prompt over the server's limit: that workflow fails with the server's message,
    the others complete."""
    from agentrt.serve.settings import ServeSettings

    wf = Workflow("mixed")

    @wf.agent(prefix="Answer briefly.", max_tokens=4)
    async def solo(ctx):
        return await ctx.gen(ctx.input)

    engine = make_engine(model_dir, kv_cache_tokens=8192)
    settings = ServeSettings(grace_seconds=5, max_prompt_tokens=64)

    async def main():
        async with open_runtime(
            backend="openai", base_url=server.base_url, tokenizer=str(model_dir)
        ) as rt:
            handles = [rt.submit(wf, x) for x in ["short", "long " * 200, "also short"]]
            return [await h.wait() for h in handles]

    with ServerThread(engine, settings) as server:
        results = anyio.run(main)
    assert [r.error is None for r in results] == [True, False, True]
    assert "maximum prompt length" in str(results[1].error)
    engine.check_integrity()


def test_agentrt_run_backend_openai_cli(model_dir, tmp_path, capsys):
    """`agentrt run FILE --backend openai --base-url URL` end to end."""
    from agentrt.cli import main

    path = tmp_path / "wf.py"
    path.write_text(
        "from agentrt import Workflow\n"
        "workflow = Workflow('cli-remote')\n"
        "@workflow.agent(prefix='Be brief.', max_tokens=4)\n"
        "async def answer(ctx):\n"
        "    return await ctx.gen(ctx.input)\n"
        "inputs = ['hi', 'there']\n"
    )
    engine = make_engine(model_dir, kv_cache_tokens=8192)
    with ServerThread(engine) as server:
        code = main(
            ["run", str(path), "--backend", "openai", "--base-url", server.base_url,
             "--tokenizer", str(model_dir), "--no-progress"]
        )  # fmt: skip
    assert code == 0
    assert "llm_calls" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="needs --base-url"):
        main(["run", str(path), "--backend", "openai"])


def test_503_is_retried_until_a_place_is_free(model_dir):
    """A server that holds one request at a time answers the others 503 + Retry-After:
    the backend retries them and every workflow completes."""
    from agentrt.serve.settings import ServeSettings

    engine = make_engine(model_dir, kv_cache_tokens=8192)
    settings = ServeSettings(grace_seconds=5, max_pending=1, retry_after_seconds=0)
    with ServerThread(engine, settings) as server:

        async def main():
            async with open_runtime(
                backend="openai",
                base_url=server.base_url,
                tokenizer=str(model_dir),
                retries=10,
                backoff_s=0.05,
            ) as rt:
                handles = [rt.submit(_workflow(), x) for x in INPUTS]
                return [await h.wait() for h in handles]

        results = anyio.run(main)
        rejected = [
            line
            for line in server.get("/metrics").text.splitlines()
            if line.startswith("agentrt:request_rejected_total")
        ]
    assert all(r.error is None for r in results)
    assert rejected and float(rejected[0].split()[-1]) > 0  # there were 503s to retry


def test_a_server_that_goes_away_fails_the_calls_in_flight(model_dir):
    """The server stops mid-run: the workflow that finished before keeps its result, the
    ones whose calls were in flight fail with the reason, and the runtime ends cleanly."""
    from agentrt.serve.settings import ServeSettings

    quick, slow = Workflow("quick"), Workflow("slow")

    @quick.agent(prefix="Be brief.", max_tokens=2)
    async def q(ctx):
        return await ctx.gen(ctx.input)

    @slow.agent(prefix="Be long.", max_tokens=900, ignore_eos=True)
    async def s(ctx):
        return await ctx.gen(ctx.input)

    engine = make_engine(model_dir, kv_cache_tokens=8192)
    server = ServerThread(engine, ServeSettings(grace_seconds=0.1))

    async def main():
        async with open_runtime(
            backend="openai", base_url=server.base_url, tokenizer=str(model_dir), retries=0
        ) as rt:
            first = await rt.submit(quick, "hi").wait()
            handles = [rt.submit(slow, x) for x in ("a", "b")]
            with anyio.fail_after(30):
                while not engine.requests:  # both long calls are running on the server
                    await anyio.sleep(0.01)
            server.server.should_exit = True  # the server goes away
            return first, [await h.wait() for h in handles]

    with server:
        first, stopped = anyio.run(main)
    assert first.error is None and first.results["q"]
    assert all(r.error is not None for r in stopped)
    assert all("model call failed" in str(r.error) for r in stopped), [
        str(r.error) for r in stopped
    ]
    engine.check_integrity()


def test_replay_a_trace_against_a_server(model_dir, tmp_path):
    """`agentrt replay --backend openai`: a recorded agent loop replayed on a running
    server, every call completed, the shared prefixes served from its cache."""
    import json

    from test_learn_from_trace import record_trace

    from agentrt.bench.kvflow_workloads import single
    from agentrt.cli import main

    path = tmp_path / "loop.jsonl"
    record_trace(path, single(prefix=64, dynamic=8, output=4, rounds=2, agents=3))
    engine = make_engine(model_dir, kv_cache_tokens=8192)
    out = tmp_path / "r.json"
    with ServerThread(engine) as server:
        code = main(
            ["replay", str(path), "--backend", "openai", "--base-url", server.base_url,
             "--tokenizer", str(model_dir), "--dispatch", "dependency", "--no-progress",
             "--json", str(out)]
        )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())["server"]
    assert result["completed"] == 6 and result["failed"] == 0
    assert result["server_kind"] == "agentrt"
    assert result["device_hit_rate"] > 0.3  # the agents' prefixes, second round
    engine.check_integrity()


def test_simulate_a_town_on_a_server_in_sync_and_ooo(model_dir, tmp_path):
    """`agentrt simulate --backend openai`: the town's modes with real model outputs from
    a running server; greedy decoding on one server gives the same world either way."""
    import json

    from agentrt.cli import main

    engine = make_engine(model_dir, kv_cache_tokens=16384)
    out = tmp_path / "town.json"
    with ServerThread(engine) as server:
        code = main(
            ["simulate", "--agents", "4", "--steps", "3", "--mode", "all",
             "--dynamics", "dense", "--backend", "openai", "--base-url", server.base_url,
             "--tokenizer", str(model_dir), "--max-tokens", "4", "--json", str(out)]
        )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert {"sync", "ooo"} <= set(result["modes"])
    assert result["hashes_agree"] is True
    assert all(m["calls"] > 0 for m in result["modes"].values())
    engine.check_integrity()


def test_ctrl_c_cancels_the_calls_in_flight(model_dir, tmp_path):
    """SIGINT to `agentrt run --backend openai`: it exits 130, and its HTTP requests
    close, so the server aborts them and frees their KV."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "slow.py"
    path.write_text(
        "from agentrt import Workflow\n"
        "workflow = Workflow('slow')\n"
        "@workflow.agent(prefix='Go on.', max_tokens=900, ignore_eos=True)\n"
        "async def talk(ctx):\n"
        "    return await ctx.gen(ctx.input)\n"
        "inputs = ['a', 'b']\n"
    )
    engine = make_engine(model_dir, kv_cache_tokens=8192)
    with ServerThread(engine) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentrt.cli", "run", str(path), "--backend", "openai",
             "--base-url", server.base_url, "--tokenizer", str(model_dir), "--no-progress"],
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(engine.requests) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the calls never reached the server"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        deadline = time.monotonic() + 10
        while engine.requests:  # the server saw the disconnects and aborted both
            assert time.monotonic() < deadline, list(engine.requests)
            time.sleep(0.02)
    engine.check_integrity()


def test_a_generic_server_gets_text_prompts_and_no_extras():
    from agentrt.engine import loader
    from agentrt.engine.sampling_params import SamplingParams
    from agentrt.remote.server_kind import completion_body

    tokenizer = loader.load_tokenizer(loader.resolve_model_dir(None))
    ids = tokenizer.encode("Hello there", add_special_tokens=False)
    params = SamplingParams(max_tokens=3, ignore_eos=True, top_k=5)
    body = completion_body("generic", "m", ids, tokenizer.decode(ids), params)
    assert body["prompt"] == "Hello there"
    assert "ignore_eos" not in body and "top_k" not in body
    body = completion_body("vllm", "m", ids, None, params)
    assert body["prompt"] == ids and body["ignore_eos"] is True and body["top_k"] == 5
