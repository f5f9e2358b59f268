"""Ctrl-C (SIGINT to the process group) and SIGTERM stop a real `agentrt` process within
seconds: exit 130 / 143 with one line on stderr, its worker processes ended (no orphans)
and no output file, complete or partial, left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from agentrt.interrupts import Terminated, exit_status, interrupts_deferred, sigterm_raises

ROOT = Path(__file__).resolve().parent.parent
EXIT_WITHIN_S = 30  # a hang bound; the commands exit in about 2 s (interpreter teardown)


def _processes() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, process group)} of every live process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def _children(pid: int) -> list[int]:
    return [p for p, (ppid, _) in _processes().items() if ppid == pid]


def _group(pgid: int) -> list[int]:
    return [p for p, (_, group) in _processes().items() if group == pgid]


def _cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _big_trace(path: Path, requests: int = 30_000) -> Path:
    """A Mooncake trace that takes the sim backend minutes to replay."""
    with path.open("wb") as f:
        for i in range(requests):
            conv = i % 50
            blocks = [1000 * conv + b for b in range(2 + (i // 50) % 6)]
            row = {"timestamp": 100 * i, "input_length": 512 * len(blocks) - 100}
            f.write(orjson.dumps({**row, "output_length": 64, "hash_ids": blocks}) + b"\n")
    return path


def _start(argv: list[str], tmp_path: Path) -> subprocess.Popen:
    """`agentrt ARGV` in its own session (so its process group is its pid)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "agentrt.cli", *argv],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=(tmp_path / "stdout.txt").open("wb"),
        stderr=(tmp_path / "stderr.txt").open("wb"),
    )


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen, how: str) -> int:
    """Send the signal (`int-group`: SIGINT to the group, as Ctrl-C does; `term`:
    SIGTERM to the process alone) and wait, bounded, for the exit status."""
    assert proc.poll() is None, "the command finished before it could be interrupted"
    if how == "int-group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"still running {EXIT_WITHIN_S} s after the signal") from None


def _assert_clean_exit(proc, status, expected, name, tmp_path, workers=()):
    assert status == expected
    err = (tmp_path / "stderr.txt").read_text()
    assert err.strip().splitlines()[-1] == f"agentrt: interrupted by {name}"
    assert "Traceback" not in err
    _wait_for(lambda: not _group(proc.pid), 5, "the process group to empty")
    alive = [pid for pid in workers if pid in _processes()]
    assert alive == [], f"orphaned workers {alive}"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "how, expected, name", [("int-group", 130, "SIGINT"), ("term", 143, "SIGTERM")]
)
def test_replay_with_workers_stops_and_ends_them(how, expected, name, tmp_path):
    trace = _big_trace(tmp_path / "big.jsonl")
    (tmp_path / "out").mkdir()
    argv = ["replay", str(trace), "--backend", "sim", "--policy", "lru,kvflow", "--jobs", "2"]
    proc = _start([*argv, "--no-progress", "--json", "out/r.json"], tmp_path)
    try:
        _wait_for(lambda: len(_children(proc.pid)) >= 2, 60, "two worker processes")
        workers = _children(proc.pid)
        time.sleep(1.0)  # the workers are replaying now
        status = _stop(proc, how)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _assert_clean_exit(proc, status, expected, name, tmp_path, workers)


@pytest.mark.parametrize(
    "how, expected, name", [("int-group", 130, "SIGINT"), ("term", 143, "SIGTERM")]
)
def test_in_process_simulation_stops(how, expected, name, tmp_path):
    (tmp_path / "out").mkdir()
    argv = ["simulate", "--backend", "sim", "--agents", "25", "--steps", "200000"]
    proc = _start([*argv, "--mode", "ooo", "--json", "out/s.json"], tmp_path)
    try:
        # the sim backend loads no torch: the run is past its imports (well under a
        # second of CPU) once it has used 2 s
        _wait_for(lambda: _cpu_seconds(proc.pid) >= 2.0, 60, "the simulation to start")
        status = _stop(proc, how)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _assert_clean_exit(proc, status, expected, name, tmp_path)


def test_sigterm_raises_terminated_inside_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends
    assert signal.getsignal(signal.SIGTERM) is before
    assert exit_status(Terminated()) == 143 and exit_status(KeyboardInterrupt()) == 130


@pytest.mark.parametrize(
    "signum, raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]
)
def test_deferred_interrupt_lets_the_block_finish_then_raises(signum, raised):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    finished = False
    with pytest.raises(raised) as exc, interrupts_deferred():
        os.kill(os.getpid(), signum)
        time.sleep(0.2)  # the signal is noted meanwhile, not raised
        finished = True
    assert finished
    assert type(exc.value) is raised
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
