"""`agentrt run` on the sim backend: progress bar, inputs with outputs, `--json` with
every agent's result, `--stream AGENT`; and `agentrt.run(..., backend="sim")`."""

from __future__ import annotations

import io
import re
import textwrap
import threading

import orjson

import agentrt
from agentrt.cli import main
from agentrt.run_cli import output_text
from agentrt.run_file import StreamPrinter
from agentrt.scheduler.runtime import TokenDelta

FLOW = """
    import agentrt

    workflow = agentrt.Workflow("story")


    @workflow.agent(prefix="You outline stories.", max_tokens=6)
    async def outline(ctx):
        return await ctx.gen(f"Outline a story about {ctx.input}.")


    @workflow.agent(prefix="You write stories.", after=[outline], max_tokens=8)
    async def write(ctx):
        return await ctx.gen(f"Write it:\\n{ctx.results['outline']}")


    inputs = ["a cat", "the moon"]
"""


def flow_file(tmp_path):
    path = tmp_path / "story.py"
    path.write_text(textwrap.dedent(FLOW))
    return path


def test_run_prints_inputs_outputs_and_json_keeps_every_agent(tmp_path, capsys):
    out_json = tmp_path / "run.json"
    argv = ["run", str(flow_file(tmp_path)), "--backend", "sim", "--json", str(out_json)]
    assert main([*argv, "--progress"]) == 0
    captured = capsys.readouterr()
    result = orjson.loads(out_json.read_bytes())
    assert result["workflows"] == 2 and result["failed"] == 0 and result["llm_calls"] == 4
    runs = {r["input"]: r for r in result["results"]}
    assert set(runs) == {"a cat", "the moon"}
    for r in runs.values():
        assert r["ok"] and r["error"] is None and r["llm_calls"] == 2
        assert set(r["results"]) == {"outline", "write"}
        assert r["output"] == r["results"]["write"] and r["results"]["outline"].strip()
    lines = captured.out.splitlines()
    for wid, x in (("story-1", "a cat"), ("story-2", "the moon")):
        i = lines.index(f"[{wid}] input: {x}")
        printed = f"  output: {output_text(runs[x]['output'])}".splitlines()
        assert lines[i + 1 : i + 1 + len(printed)] == printed  # sim text may hold newlines
    assert output_text(" two\nlines \n") == "two\n    lines"
    # the bar (stderr): all workflows done, with the calls and tokens/s it counted
    final = captured.err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"workflows: 100%.* 2/2 .*calls=4, tok_s=[\d.]+", final), final


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    trace = tmp_path / "calls.jsonl"
    assert main(["run", str(flow_file(tmp_path)), "--backend", "sim", "--trace", str(trace)]) == 0
    assert "workflows" not in capsys.readouterr().err
    records = [orjson.loads(line) for line in trace.read_bytes().splitlines()]
    assert len(records) == 4
    assert all(0 < r["ttft_s"] < 60 for r in records)  # on the sim's own (virtual) clock


def test_stream_prints_the_chosen_agents_tokens(tmp_path, capsys):
    out_json = tmp_path / "run.json"
    argv = ["run", str(flow_file(tmp_path)), "--backend", "sim", "--stream", "write"]
    assert main([*argv, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    runs = orjson.loads(out_json.read_bytes())["results"]
    section = out[: out.index("[story-1] input:")]  # streamed before the results
    parts = re.split(r"\[(story-\d)/(\w+)/\d+\] ", section)
    assert parts[0] == "" and len(parts) > 3
    streamed: dict[str, str] = {}
    for wid, agent, text in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        assert agent == "write"  # only the chosen agent
        assert wid not in streamed  # each call's tokens are written together
        assert text.endswith("\n")
        streamed[wid] = streamed.get(wid, "") + text[:-1]
    assert streamed == {r["workflow_id"]: r["results"]["write"] for r in runs}


def story_workflow() -> agentrt.Workflow:
    wf = agentrt.Workflow("story")

    @wf.agent(prefix="You outline stories.", max_tokens=6)
    async def outline(ctx):
        return await ctx.gen(f"Outline a story about {ctx.input}.")

    @wf.agent(prefix="You write stories.", after=[outline], max_tokens=8)
    async def write(ctx):
        return await ctx.gen(f"Write it:\n{ctx.results['outline']}")

    return wf


def test_public_run_on_the_sim_backend():
    """Text prompts on the sim backend use the default model's tokenizer; outputs are
    the cost model's synthetic tokens, decoded."""
    wf = story_workflow()
    results = agentrt.run(wf, ["a cat", "the moon"], backend="sim", profile="cpu-smollm2-135m")
    assert [r.ok for r in results] == [True, True]
    assert [r.input for r in results] == ["a cat", "the moon"]
    assert all(r.llm_calls == 2 and r.output == r.results["write"] for r in results)
    assert all(isinstance(r.output, str) and r.output for r in results)
    assert all(set(r.results) == {"outline", "write"} for r in results)


def test_public_run_with_a_workflow_timeout_on_the_sim_backend():
    release = threading.Event()
    wf = agentrt.Workflow("slow")

    @wf.agent(prefix="Wait.", max_tokens=2)
    async def waiter(ctx):
        if ctx.input == "stuck":
            await ctx.tool(release.wait, 60)  # blocks a worker thread, not the loop
        return await ctx.gen("done")

    try:
        results = agentrt.run(wf, ["fine", "stuck"], backend="sim", timeout=5)
    finally:
        release.set()
    assert results[0].ok, results[0].error
    assert isinstance(results[1].error, TimeoutError)
    assert str(results[1].error).startswith("workflow slow-2 ran past its timeout of 5 s")


def test_public_run_shows_the_bar_when_asked(capsys):
    results = agentrt.run(story_workflow(), ["a cat"], backend="sim", progress=True)
    assert results[0].ok
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"workflows: 100%.* 1/1 .*calls=2, tok_s=[\d.]+", final), final


def test_run_timeout_fails_only_the_slow_workflow(tmp_path, capsys):
    path = tmp_path / "slow.py"
    path.write_text(
        textwrap.dedent(
            """
            import time

            import agentrt

            workflow = agentrt.Workflow("slow")


            @workflow.agent(max_tokens=2)
            async def waiter(ctx):
                if ctx.input == "stuck":
                    await ctx.tool(time.sleep, 3)
                return "done"


            inputs = ["fine", "stuck"]
            """
        )
    )
    code = main(["run", str(path), "--backend", "sim", "--timeout", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[lines.index("[slow-1] input: fine") + 1] == "  output: done"
    assert lines[lines.index("[slow-2] input: stuck") + 1] == (
        "  FAILED: WorkflowTimeoutError: workflow slow-2 ran past its timeout of 1 s; "
        "its running agents were cancelled and their model calls aborted"
    )


def test_stream_printer_writes_each_call_whole():
    """Calls of the streamed agent that run side by side are not interleaved: one is
    live, the others are held and written when it finishes (a cut-short call finishes
    with empty text)."""
    out = io.StringIO()
    printer = StreamPrinter("w", out)
    for call, text, finished in [
        ("a", "A1", False),
        ("b", "B1", False),
        ("c", "C1", False),
        ("c", "C2", True),
        ("a", "A2", False),
        ("b", "B2", False),
        ("a", "", True),  # a is cut short
        ("b", "B3", True),
    ]:
        printer(TokenDelta("wf", "w", call, text, finished))
    printer(TokenDelta("wf", "other", "x", "ignored", True))
    assert out.getvalue() == "[a] A1A2\n[b] B1B2B3\n[c] C1C2\n"
