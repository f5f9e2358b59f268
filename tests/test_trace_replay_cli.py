"""`agentrt replay`: help, JSON keys per policy, importer-driven runs, bad lines -> exit 2,
the engine flags it passes on."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agentrt.cli import main

KEYS = {
    "completed",
    "failed",
    "duration_s",
    "request_throughput",
    "output_throughput",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "device_hit_rate",
    "host_hit_rate",
    "recomputed_tokens",
}


def _mooncake(tmp_path: Path, rows: list[dict], name: str = "mc.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _rows() -> list[dict]:
    # Three conversations' turns: each later turn repeats its conversation's blocks.
    rows = []
    for turn in range(3):
        for conv in range(3):
            blocks = [1000 * conv + b for b in range(2 + turn)]
            rows.append(
                {
                    "timestamp": 1000 * turn + 10 * conv,
                    "input_length": 512 * len(blocks) - 100,
                    "output_length": 8,
                    "hash_ids": blocks,
                }
            )
    return rows


def test_replay_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["replay", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--backend",
        "--policy",
        "--dispatch",
        "--speed",
        "--scale-tokens",
        "--max-requests",
        "--skip-bad",
        "--plot",
        "--timeline",
        "--json",
    ):
        assert option in out


def test_replay_mooncake_on_sim_writes_json_per_policy(tmp_path, capsys):
    trace = _mooncake(tmp_path, _rows())
    out = tmp_path / "r.json"
    timeline = tmp_path / "t.json"
    argv = [
        "replay",
        str(trace),
        "--backend",
        "sim",
        "--policy",
        "lru,hicache",
        "--jobs",
        "1",
        "--no-progress",
        "--json",
        str(out),
        "--timeline",
        str(timeline),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Serving benchmark result" in printed and "Speedup over lru" in printed
    results = orjson.loads(out.read_bytes())
    assert list(results) == ["lru", "hicache"]
    for result in results.values():
        assert set(result) >= KEYS
        for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
            assert set(result[key]) == {"mean", "p50", "p99"}
        assert result["completed"] == 9 and result["failed"] == 0
        assert result["device_hit_rate"] > 0.3  # later turns reuse earlier turns' blocks
        assert result["config"]["requests"] == 9
    events = orjson.loads(timeline.read_bytes())["traceEvents"]
    tracks = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {"engine steps", "mooncake"} <= tracks
    assert {e["args"]["name"] for e in events if e["name"] == "process_name"} == {
        "lru",
        "hicache",
    }


def test_max_requests_and_failed_requests(tmp_path):
    rows = _rows()
    rows[1]["input_length"], rows[1]["hash_ids"] = 4000, list(range(50, 58))
    out = tmp_path / "r.json"
    argv = [
        "replay",
        str(_mooncake(tmp_path, rows)),
        "--policy",
        "lru",
        "--max-requests",
        "4",
        "--kv-cache-tokens",
        "2048",
        "--no-progress",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    result = orjson.loads(out.read_bytes())["lru"]
    assert result["completed"] == 3 and result["failed"] == 1  # 4000 tokens > 2048 pool


@pytest.mark.parametrize("flag, waits", [([], True), (["--recompute-when-no-room"], False)])
def test_recompute_when_no_room_reaches_the_engine(tmp_path, flag, waits):
    out = tmp_path / "r.json"
    trace = str(_mooncake(tmp_path, _rows()))
    argv = ["replay", trace, "--policy", "hicache", "--no-progress", "--json", str(out)]
    assert main([*argv, *flag]) == 0
    result = orjson.loads(out.read_bytes())["hicache"]
    assert result["config"]["host_load_waits"] is waits and result["completed"] == 9


def test_bad_trace_line_exits_2_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    rows = [orjson.dumps(r).decode() for r in _rows()[:3]]
    rows[2] = rows[2].replace('"output_length"', '"output_lenght"')
    path.write_text("\n".join(rows) + "\n")
    assert main(["replay", str(path), "--no-progress"]) == 2
    assert f"{path}:3: missing field 'output_length'" in capsys.readouterr().err
    out = tmp_path / "r.json"
    argv = ["replay", str(path), "--skip-bad", "--no-progress", "--json", str(out)]
    assert main(argv) == 0
    result = orjson.loads(out.read_bytes())["lru"]
    assert result["skipped"] == 1 and len(result["skipped_lines"]) == 1
    assert result["completed"] == 2


def test_unknown_policy_is_a_usage_error(tmp_path, capsys):
    trace = _mooncake(tmp_path, _rows())
    assert main(["replay", str(trace), "--policy", "lru,nope", "--no-progress"]) == 2
    assert "nope" in capsys.readouterr().err


def test_plot_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "p.png"
    argv = [
        "replay",
        str(_mooncake(tmp_path, _rows())),
        "--policy",
        "lru,kvflow",
        "--jobs",
        "1",
        "--no-progress",
        "--plot",
        str(plot),
    ]
    assert main(argv) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
