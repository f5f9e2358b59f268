"""The README quickstart runs as written; every `agentrt` command in the docs' code blocks
(README, BENCHMARKS) parses with today's CLI; the CLI explains itself and runs examples."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import orjson
import pytest

from agentrt.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def test_readme_quickstart_runs(capsys):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```python\n(.*?)```", readme, re.S)
    assert block is not None
    exec(compile(block.group(1), "README quickstart", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    assert sum("->" in line for line in printed) >= 2


@pytest.mark.parametrize("argv", [[], ["bench"], ["run"]])
def test_cli_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: agentrt" in capsys.readouterr().err


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "bench", "run"):
        assert command in out


def test_run_example_with_trace(tmp_path, capsys):
    trace = tmp_path / "calls.jsonl"
    out_json = tmp_path / "run.json"
    code = main(
        [
            "run",
            str(ROOT / "examples/many_instances.py"),
            "--trace",
            str(trace),
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    result = orjson.loads(out_json.read_bytes())
    assert result["workflows"] == 8 and result["failed"] == 0 and result["llm_calls"] == 16
    records = [orjson.loads(line) for line in trace.read_bytes().splitlines()]
    assert len(records) == 16
    answers = [r for r in records if r["agent_id"] == "support/answer"]
    assert all(r["parents"] and r["step"] == 1 for r in answers)
    assert sum(r["cached_tokens"] for r in records) > 0  # the shared handbook prefix


# examples/serve_*.py are clients of `agentrt serve`: tests/test_serve_frameworks.py runs them
RUNNABLE = sorted(
    p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("serve_")
)


@pytest.mark.parametrize("example", RUNNABLE)
def test_every_runnable_example_runs_on_sim(example, tmp_path):
    out_json = tmp_path / "run.json"
    argv = ["run", str(ROOT / "examples" / example), "--backend", "sim", "--no-progress"]
    assert main([*argv, "--json", str(out_json)]) == 0
    result = orjson.loads(out_json.read_bytes())
    assert result["workflows"] >= 1 and result["failed"] == 0 and result["llm_calls"] >= 2
    assert len(RUNNABLE) >= 3


def test_run_missing_file(capsys):
    assert main(["run", "no/such/file.py"]) == 2
    assert "no workflow file" in capsys.readouterr().err


DOCS = ("README.md", "docs/BENCHMARKS.md")
COMMAND = re.compile(r"(?:^|[\s;&(])(?:\S*/)?agentrt ([^;&|#]+)")
ASSIGNED = re.compile(r"^(\w+)=(\S+)|\bfor (\w+) in (\S+)", re.M)


def _shell_values(block: str) -> dict[str, str]:
    """The block's shell variables: `NAME=value`, or a `for NAME in` loop's first value."""
    return {m[0] or m[2]: m[1] or m[3] for m in ASSIGNED.findall(block)}


def _with_values(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m[1], m[0]), text)


def documented_commands() -> list[tuple[str, str]]:
    """(doc, argv text) of each `agentrt ...` command in a fenced code block, with line
    continuations joined and the block's shell variables put in."""
    found = []
    for doc in DOCS:
        blocks = re.findall(r"^```[a-z]*\n(.*?)^```", (ROOT / doc).read_text(), re.M | re.S)
        for block in blocks:
            text = _with_values(re.sub(r"\\\n\s*", " ", block), _shell_values(block))
            for line in text.splitlines():
                found += [(doc, m.group(1).strip()) for m in COMMAND.finditer(line)]
    return found


COMMANDS = documented_commands()


def test_the_docs_hold_commands():
    assert len(COMMANDS) >= 40 and {doc for doc, _ in COMMANDS} == set(DOCS)


@pytest.mark.parametrize("doc, command", COMMANDS, ids=[c[:60] for _, c in COMMANDS])
def test_documented_command_parses(doc, command):
    try:
        build_parser().parse_args(shlex.split(command))
    except SystemExit as exc:
        pytest.fail(f"{doc}: `agentrt {command}` does not parse (exit {exc.code})")
