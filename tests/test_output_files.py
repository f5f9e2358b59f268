"""Output files: bad paths fail before any work, writes are atomic, and the JSON is
written before the optional plot and timeline, so a failed plot keeps the measurement."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest

from agentrt.cli import main
from agentrt.output_files import JSON, OutputPathError, atomic_write_bytes, check_output
from agentrt.report import write_json

# every command and every flag that writes a file, with the extension it needs
WRITERS: list[tuple[list[str], str, str]] = [
    (["demo"], "--json", ".json"),
    (["bench", "engine"], "--json", ".json"),
    (["bench", "tracker"], "--json", ".json"),
    (["bench", "workflows"], "--json", ".json"),
    (["bench", "kvflow"], "--json", ".json"),
    (["bench", "sim"], "--json", ".json"),
    (["calibrate"], "--json", ".json"),
    (["calibrate"], "--out", ".json"),
    (["run", "examples/pipeline.py"], "--json", ".json"),
    (["run", "examples/pipeline.py"], "--trace", ".jsonl"),
    (["replay", "t.jsonl"], "--json", ".json"),
    (["replay", "t.jsonl"], "--timeline", ".json"),
    (["replay", "t.jsonl"], "--plot", ".png"),
    (["simulate"], "--json", ".json"),
]
IDS = [f"{' '.join(w[:2])} {flag}" for w, flag, _ in WRITERS]


def _usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("words, flag, suffix", WRITERS, ids=IDS)
def test_wrong_extension_is_rejected_before_work(words, flag, suffix, tmp_path, capsys):
    target = tmp_path / "out.txt"
    err = _usage_error([*words, flag, str(target)], capsys)
    assert f"argument {flag}: " in err and f"must end in {suffix}" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("words, flag, suffix", WRITERS, ids=IDS)
def test_directory_is_rejected_before_work(words, flag, suffix, tmp_path, capsys):
    target = tmp_path / f"results{suffix}"
    target.mkdir()
    err = _usage_error([*words, flag, str(target)], capsys)
    assert f"argument {flag}: " in err and "is a directory" in err


@pytest.mark.parametrize("words, flag, suffix", WRITERS, ids=IDS)
def test_unwritable_place_is_rejected_before_work(words, flag, suffix, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    err = _usage_error([*words, flag, str(blocker / f"out{suffix}")], capsys)
    assert f"argument {flag}: cannot write" in err and "is not a directory" in err


def test_directory_without_write_permission_is_rejected():
    # /proc refuses new files even to root, where permission bits would not
    with pytest.raises(OutputPathError, match="cannot create files in '/proc'"):
        check_output("/proc/agentrt-out.json", JSON)


def test_missing_directories_are_allowed_and_created_on_write(tmp_path):
    path = check_output(tmp_path / "new" / "deeper" / "r.json", JSON)
    assert not path.parent.exists()  # the check itself creates nothing
    write_json(path, {"a": 1})
    assert orjson.loads(path.read_bytes()) == {"a": 1}


def test_plot_without_matplotlib_is_rejected_before_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what a missing package looks like
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [1]}\n')
    out = tmp_path / "r.json"
    plot = tmp_path / "p.png"
    argv = ["replay", str(trace), "--no-progress", "--json", str(out), "--plot", str(plot)]
    err = _usage_error(argv, capsys)
    assert f"argument --plot: cannot draw '{plot}': matplotlib is not installed" in err
    assert not out.exists()


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b"old")
    atomic_write_bytes(path, b"new and longer")
    assert path.read_bytes() == b"new and longer"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would, not mkstemp's 0600


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_bytes(b'{"old": true}')

    def ctrl_c(fd: int) -> None:  # Ctrl-C arriving while the data is being flushed
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"new": list(range(100_000))})
    assert path.read_bytes() == b'{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_unserialisable_result_leaves_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b'{"old": true}')
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert path.read_bytes() == b'{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _trace(tmp_path: Path) -> Path:
    path = tmp_path / "t.jsonl"
    rows = [
        {"timestamp": 10 * i, "input_length": 600, "output_length": 4, "hash_ids": [1, 2 + i]}
        for i in range(6)
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_failed_plot_keeps_the_json_and_the_timeline(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    import agentrt.trace.plot

    def broken_plot(*args, **kwargs):  # a drawing error after the replay finished
        raise RuntimeError("font cache is corrupt")

    monkeypatch.setattr(agentrt.trace.plot, "plot_replay", broken_plot)
    out, timeline, plot = tmp_path / "r.json", tmp_path / "tl.json", tmp_path / "p.png"
    argv = ["replay", str(_trace(tmp_path)), "--no-progress", "--policy", "lru,kvflow"]
    argv += ["--jobs", "1", "--json", str(out), "--timeline", str(timeline), "--plot", str(plot)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"agentrt: error: --plot {plot}: font cache is corrupt" in err
    result = orjson.loads(out.read_bytes())
    assert set(result) == {"lru", "kvflow"} and result["lru"]["completed"] == 6
    assert "calls" not in result["lru"]  # per-call data feeds the plot only
    assert orjson.loads(timeline.read_bytes())["traceEvents"]
    assert not plot.exists()


def test_plot_and_json_written_together(tmp_path):
    pytest.importorskip("matplotlib")
    out, plot = tmp_path / "r.json", tmp_path / "p.svg"
    argv = ["replay", str(_trace(tmp_path)), "--no-progress", "--jobs", "1"]
    assert main([*argv, "--json", str(out), "--plot", str(plot)]) == 0
    assert orjson.loads(out.read_bytes())["lru"]["completed"] == 6
    assert plot.read_bytes().lstrip().startswith(b"<?xml")
