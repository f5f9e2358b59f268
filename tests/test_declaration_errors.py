"""Each bad declaration or setting is refused early, with one line saying what is wrong
and what is accepted: at the decoration, or before any model loads."""

from __future__ import annotations

import textwrap

import pytest
import torch

import agentrt
from agentrt.cli import main
from agentrt.engine.config import EngineConfig
from agentrt.engine.device_check import DeviceError
from agentrt.graph.agent_options import AgentOptionError
from agentrt.graph.decorators import Workflow
from agentrt.graph.errors import (
    DuplicateEdgeError,
    GraphError,
    UnboundedCycleError,
    UnknownAgentError,
)

NO_MODEL = "/nonexistent/model-dir"  # loading it would fail with a different error


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_plain_def_agent_is_refused_at_declaration():
    wf = Workflow("w")
    with pytest.raises(AgentOptionError) as exc:

        @wf.agent()
        def planner(ctx):  # not async
            return "plan"

    assert one_line(exc) == (
        "agent 'planner' must be an async function, got a plain function (def): "
        "write `async def planner(ctx): ...`"
    )
    assert "planner" not in wf.functions


def test_agent_without_its_context_argument_is_refused():
    with pytest.raises(AgentOptionError, match=r"must take one argument, its context"):

        @Workflow("w").agent()
        async def planner(): ...


@pytest.mark.parametrize(
    ("keyword", "hint"),
    [("pefix", "did you mean 'prefix'?"), ("max_token", "did you mean 'max_tokens'?")],
)
def test_misspelled_keyword_names_the_accepted_ones(keyword, hint):
    with pytest.raises(AgentOptionError) as exc:

        @Workflow("w").agent(**{keyword: 1})
        async def planner(ctx): ...

    text = one_line(exc)
    assert text.startswith(f"agent 'planner': unknown keyword {keyword!r} ({hint})")
    assert "accepted: name, prefix, after" in text and "max_tokens" in text


def test_bad_sampling_value_is_one_line_not_a_pydantic_dump():
    with pytest.raises(AgentOptionError) as exc:

        @Workflow("w").agent(max_tokens=0)
        async def planner(ctx): ...

    assert one_line(exc).startswith("agent 'planner': SamplingParams.max_tokens must be ")


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"prefix": 123}, "agent 'planner': prefix must be text (a str) or a list of token ids"),
        ({"prefix": None}, "agent 'planner': prefix must be text"),
        ({"loop_to": "planner", "max_loops": 0}, "agent 'planner': max_loops must be a positive"),
        ({"join": "any"}, "agent 'planner': join must be 'and' or 'or', got 'any'"),
    ],
)
def test_bad_prefix_loop_bound_or_join_is_one_line(keywords, message):
    with pytest.raises(GraphError) as exc:

        @Workflow("w").agent(**keywords)
        async def planner(ctx): ...

    assert one_line(exc).startswith(message)


@pytest.mark.parametrize("timeout", [0, -1, "5", float("nan")])
def test_bad_timeout_is_refused(timeout):
    with pytest.raises(AgentOptionError, match="timeout must be a positive number"):

        @Workflow("w").agent(timeout=timeout)
        async def planner(ctx): ...


def test_duplicate_name_and_duplicate_edge():
    wf = Workflow("w")

    @wf.agent()
    async def a(ctx): ...

    with pytest.raises(GraphError, match="already has an agent 'a'"):

        @wf.agent(name="a")
        async def other(ctx): ...

    with pytest.raises(DuplicateEdgeError):

        @wf.agent(after=[a, "a"])
        async def b(ctx): ...


def test_agent_of_another_workflow_is_refused():
    first = Workflow("first")

    @first.agent()
    async def a(ctx): ...

    with pytest.raises(GraphError, match="belongs to workflow 'first'"):

        @Workflow("second").agent(after=[a])
        async def b(ctx): ...


def test_single_after_reference_needs_no_list():
    wf = Workflow("w")

    @wf.agent()
    async def planner(ctx): ...

    @wf.agent(after="planner")
    async def coder(ctx): ...

    assert wf.graph.successors("planner") == ["coder"]


def test_cycle_is_refused_when_the_forward_reference_resolves():
    """`after="b"` waits for b; the decoration that declares b closes the cycle and is
    the one that fails (no first use needed)."""
    wf = Workflow("w")

    @wf.agent(after=["b"])
    async def a(ctx): ...

    with pytest.raises(UnboundedCycleError, match="cycle without a bound"):

        @wf.agent(after=[a])
        async def b(ctx): ...


def test_loop_without_max_loops_is_refused():
    wf = Workflow("w")

    @wf.agent()
    async def coder(ctx): ...

    with pytest.raises(UnboundedCycleError) as exc:

        @wf.agent(after=[coder], loop_to=coder)
        async def reviewer(ctx): ...

    assert one_line(exc) == (
        "agent 'reviewer': loop_to='coder' needs max_loops=N (how many times the loop may be taken)"
    )


def test_complete_workflow_is_validated_when_its_last_decorator_finishes():
    """Forward references resolved: the graph is whole and validated, before any use."""
    wf = Workflow("w")

    @wf.agent(after=["coder"])
    async def reviewer(ctx): ...

    assert not wf._graph.forward_edges  # coder -> reviewer waits for coder

    @wf.agent()
    async def coder(ctx): ...

    assert wf._graph.forward_edges == [("coder", "reviewer")]
    assert wf._graph.topological_order() == ("coder", "reviewer")


def test_never_declared_agent_fails_before_the_model_loads():
    wf = Workflow("w")

    @wf.agent(after=["planer"])  # typo of a name never declared
    async def coder(ctx): ...

    with pytest.raises(UnknownAgentError) as exc:
        agentrt.run(wf, ["x"], model=NO_MODEL)  # the model is never looked up
    assert one_line(exc) == "unknown agent 'planer' in after= of 'coder'; known agents: 'coder'"


@pytest.mark.skipif(torch.backends.cuda.is_built(), reason="this torch has CUDA")
def test_cuda_device_without_a_cuda_torch_is_one_line():
    with pytest.raises(DeviceError) as exc:
        EngineConfig(device="cuda", model=NO_MODEL)
    text = one_line(exc)
    assert text.startswith("device 'cuda' needs a CUDA build of torch")
    assert "use --device cpu" in text


def test_unknown_device_names_the_accepted_ones():
    with pytest.raises(DeviceError) as exc:
        EngineConfig(device="gpu")
    assert one_line(exc) == "unknown device 'gpu'; use cpu, cuda or cuda:N"
    EngineConfig(device="gpu", backend="sim")  # the sim backend has no device


# -- the `agentrt run` command: one line on stderr and an exit code ---------------------


def write(tmp_path, source: str):
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(source))
    return path


GOOD = """
    import agentrt

    workflow = agentrt.Workflow("good")


    @workflow.agent(prefix="Be brief.", max_tokens=3)
    async def answer(ctx):
        return await ctx.gen(str(ctx.input))


    inputs = ["a"]
"""


def run_cli(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_bad_declaration_is_one_line_with_file_and_line(tmp_path, capsys):
    path = write(
        tmp_path,
        """
        import agentrt

        workflow = agentrt.Workflow("bad")


        @workflow.agent(prefix="x")
        def answer(ctx):
            return "not async"
        """,
    )
    code, out, err = run_cli(["run", str(path), "--model", NO_MODEL], capsys)
    assert code == 2 and out == ""
    assert err == (
        f"agentrt: error: {path}:7: AgentOptionError: agent 'answer' must be an async "
        "function, got a plain function (def): write `async def answer(ctx): ...`\n"
    )


def test_cli_file_calling_sys_exit_is_one_line(tmp_path, capsys):
    path = write(tmp_path, "import sys\n\nsys.exit('no config')\n")
    code, out, err = run_cli(["run", str(path)], capsys)
    assert code == 2
    assert err == f"agentrt: error: {path}:3: SystemExit: no config\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--priority", "fastest"],
            "agentrt: error: unknown priority 'fastest'; "
            "known: earliest_step, fewest_remaining, fifo\n",
        ),
        (["--device", "tpu"], "agentrt: error: unknown device 'tpu'; use cpu, cuda or cuda:N\n"),
        (
            ["--stream", "nobody"],
            "agentrt: error: --stream 'nobody': no such agent; agents: answer\n",
        ),
    ],
)
def test_cli_bad_setting_fails_before_the_model_loads(tmp_path, capsys, extra, expected):
    path = write(tmp_path, GOOD)
    code, out, err = run_cli(["run", str(path), "--model", NO_MODEL, *extra], capsys)
    assert (code, err) == (2, expected)


@pytest.mark.skipif(torch.backends.cuda.is_built(), reason="this torch has CUDA")
def test_cli_cuda_without_cuda_torch(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    code, _, err = run_cli(["run", str(path), "--model", NO_MODEL, "--device", "cuda"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("agentrt: error: device 'cuda' needs a CUDA build of torch")


def test_cli_failing_workflow_is_one_line_per_workflow_and_exit_1(tmp_path, capsys):
    path = write(
        tmp_path,
        """
        import agentrt

        workflow = agentrt.Workflow("fragile")


        @workflow.agent(prefix="Be brief.", max_tokens=3)
        async def answer(ctx):
            if ctx.input == "bad":
                return await ctx.gen(42)  # not text
            if ctx.input == "worse":
                return await ctx.gen_many(["a", "b"], max_tokns=2)  # misspelled
            return await ctx.gen(ctx.input)


        inputs = ["ok", "bad", "worse"]
        """,
    )
    code, out, err = run_cli(["run", str(path), "--backend", "sim"], capsys)
    assert code == 1 and "Traceback" not in out + err
    lines = out.splitlines()
    assert lines[lines.index("[fragile-2] input: bad") + 1] == (
        "  FAILED: TypeError: agent 'answer': ctx.gen takes the prompt text as a str, got int"
    )
    assert lines[lines.index("[fragile-3] input: worse") + 1].startswith(
        "  FAILED: AgentOptionError: agent 'answer': unknown keyword 'max_tokns' "
        "(did you mean 'max_tokens'?)"
    )
    assert lines[lines.index("[fragile-1] input: ok") + 1].startswith("  output: ")


def test_cli_main_that_raises_is_one_line(tmp_path, capsys):
    path = write(
        tmp_path,
        """
        async def main(runtime):
            raise RuntimeError("no inputs today")
        """,
    )
    code, _, err = run_cli(["run", str(path), "--backend", "sim"], capsys)
    assert code == 2
    assert err == f"agentrt: error: {path}: RuntimeError: no inputs today\n"


def test_cli_never_declared_agent_names_the_file(tmp_path, capsys):
    path = write(
        tmp_path,
        """
        import agentrt

        workflow = agentrt.Workflow("typo")


        @workflow.agent(after=["planer"])
        async def coder(ctx):
            return "code"
        """,
    )
    code, _, err = run_cli(["run", str(path), "--model", NO_MODEL], capsys)
    assert code == 2
    assert err == (
        f"agentrt: error: {path}: UnknownAgentError: unknown agent 'planer' in after= of "
        "'coder'; known agents: 'coder'\n"
    )
