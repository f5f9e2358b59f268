"""The README quickstart runs as written; the CLI explains itself and runs examples."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from agentrt.cli import main

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


def test_run_missing_file(capsys):
    assert main(["run", "no/such/file.py"]) == 2
    assert "no workflow file" in capsys.readouterr().err
