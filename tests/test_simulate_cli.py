"""`agentrt simulate`: help, a tiny sim-backend run with --json, clear errors."""

from __future__ import annotations

import orjson
import pytest

from agentrt.cli import main


def test_simulate_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--agents", "--steps", "--mode", "--backend", "--replicas", "--profile"):
        assert flag in out


def test_simulate_sim_backend_json(tmp_path, capsys):
    path = tmp_path / "sim.json"
    argv = [
        "simulate",
        "--agents",
        "8",
        "--steps",
        "3",
        "--mode",
        "all",
        "--backend",
        "sim",
        "--replicas",
        "2",
        "--seed",
        "2",
        "--dynamics",
        "dense",
        "--json",
        str(path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ooo/sync speedup" in out and "% of oracle" in out and "all equal" in out
    data = orjson.loads(path.read_bytes())
    assert data["agents"] == 8 and data["steps"] == 3 and data["replicas"] == 2
    assert data["profile"] == "l4-llama3-8b" and data["policy"] == "lru"
    assert list(data["modes"]) == ["sync", "ooo", "oracle"]
    assert data["hashes_agree"] is True and data["ooo_over_sync"] > 0
    for d in data["modes"].values():
        for key in (
            "makespan",
            "calls",
            "parallelism",
            "world_hash",
            "pct_of_oracle",
            "calls_per_wall_s",
            "calls_per_replica",
        ):
            assert key in d
        assert d["agent_steps"] == 24
    assert data["modes"]["oracle"]["pct_of_oracle"] == pytest.approx(100.0)


def test_simulate_scenario_file_and_host_tier(tmp_path, capsys):
    sc = tmp_path / "town.yaml"
    sc.write_text("agents: 6\nseed: 4\nsteps: 2\n")
    path = tmp_path / "out.json"
    argv = [
        "simulate",
        "--scenario",
        str(sc),
        "--mode",
        "ooo",
        "--host-kv-tokens",
        "2048",
        "--json",
        str(path),
    ]
    assert main(argv) == 0
    data = orjson.loads(path.read_bytes())
    assert data["agents"] == 6 and data["steps"] == 2 and data["seed"] == 4
    assert data["policy"] == "kvflow" and list(data["modes"]) == ["ooo"]


@pytest.mark.parametrize(
    "content, suffix, needle",
    [
        ("{not json", ".json", "not valid JSON"),
        ('{"agents": 0}', ".json", "agents"),
        ('{"bogus": 1}', ".json", "bogus"),
        ("agents: 3", ".txt", ".json, .yaml or .yml"),
    ],
)
def test_bad_scenario_file_is_a_clear_error(tmp_path, capsys, content, suffix, needle):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    assert main(["simulate", "--scenario", str(path), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentrt: error:") and needle in err and str(path) in err


def test_dynamics_and_layout_flags(tmp_path):
    path = tmp_path / "out.json"
    argv = ["simulate", "--agents", "6", "--steps", "2", "--mode", "sync", "--json", str(path)]
    assert main([*argv, "--dynamics", "dense", "--start-hour", "9"]) == 0
    data = orjson.loads(path.read_bytes())
    assert (data["dynamics"], data["layout"], data["start_hour"]) == ("dense", "compact", 9.0)
    assert data["modes"]["sync"]["calls"] >= 2 * 6 * 2  # perceive + decide every step
    assert main([*argv, "--layout", "compact"]) == 0
    data = orjson.loads(path.read_bytes())
    assert (data["dynamics"], data["layout"]) == ("generative", "compact")


def test_bad_flags_are_clear_errors(capsys):
    assert main(["simulate", "--start-hour", "25", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "command line: invalid scenario" in err and "start_hour" in err
    with pytest.raises(SystemExit):
        main(["simulate", "--dynamics", "busy"])
    assert "invalid choice: 'busy'" in capsys.readouterr().err


def test_bad_mode_and_replicas(capsys):
    assert main(["simulate", "--mode", "fast", "--steps", "1"]) == 2
    assert "unknown mode" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # a usage error, found while parsing
        main(["simulate", "--replicas", "0", "--steps", "1"])
    assert exc.value.code == 2
    assert "--replicas" in capsys.readouterr().err
