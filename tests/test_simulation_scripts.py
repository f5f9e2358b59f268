"""The study scripts under `simulations/` run end to end at small sizes: JSON and plots
land (a plot's folder is made if missing), and a town where nothing ran (no LLM call in
the window) prints "-" for its ratios instead of dividing by zero."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(monkeypatch, module: str, *argv: str) -> None:
    """`python -m simulations.<module> *argv`, in this process."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setattr(sys, "argv", [module, *argv])
    importlib.import_module(f"simulations.{module}").main()


def test_kvflow_prefix_sizes_writes_json_and_a_plot_into_a_new_folder(tmp_path, monkeypatch):
    out, png = tmp_path / "k.json", tmp_path / "new" / "k.png"
    argv = ["--scenarios", "single", "--prefixes", "1024", "--json", str(out), "--plot", str(png)]
    _run(monkeypatch, "kvflow_prefix_sizes", *argv)
    (row,) = orjson.loads(out.read_bytes())["rows"]
    assert row["kvflow_vs_ideal"] == pytest.approx(1.0, abs=0.05) and png.stat().st_size > 0


@pytest.mark.parametrize("steps, agents, calls", [(12, 25, True), (3, 10, False)])
def test_metropolis_scaling(tmp_path, monkeypatch, capsys, steps, agents, calls):
    out, png = tmp_path / "m.json", tmp_path / "plots" / "m.png"
    argv = ["--steps", str(steps), "--sizes", str(agents), "--replicas", "2"]
    _run(monkeypatch, "metropolis_scaling", *argv, "--json", str(out), "--plot", str(png))
    (row,) = orjson.loads(out.read_bytes())["rows"]
    assert row["hashes_agree"] and png.stat().st_size > 0
    assert (row["calls"] > 0) is calls and (row["ooo_over_sync"] is not None) is calls
    if not calls:
        assert "-x" in capsys.readouterr().out


def test_metropolis_sensitivity(tmp_path, monkeypatch):
    out = tmp_path / "s.json"
    argv = ["--agents", "25", "--steps", "12", "--replicas", "2", "--json", str(out)]
    _run(monkeypatch, "metropolis_sensitivity", *argv)
    rows = orjson.loads(out.read_bytes())["rows"]
    assert len(rows) > 5 and all(r["hashes_agree"] for r in rows)


@pytest.mark.parametrize(
    "argv",
    [["--start-hour", "9", "--steps", "12", "--sizes", "25"], ["--steps", "3", "--sizes", "10"]],
)
def test_metropolis_virtual(tmp_path, monkeypatch, argv):
    out = tmp_path / "v.json"
    _run(monkeypatch, "metropolis_virtual", *argv, "--json", str(out))
    (row,) = orjson.loads(out.read_bytes())["rows"]
    assert row["hashes_agree"] and (row["ooo_over_sync"] is None) is (row["calls"] == 0)
