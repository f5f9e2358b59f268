"""Every numeric flag of every command rejects NaN, infinities and out-of-range values
while the command line is parsed (exit 2, the flag named), and every numeric config
field rejects them when the config is made."""

from __future__ import annotations

import argparse
import math

import pytest
from fresh_process import run_fresh

from agentrt.cli import build_parser, main
from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model.profile import CostProfile
from agentrt.simulation.cosim import CosimConfig
from agentrt.simulation.town_scenario import ScenarioError, scenario_from_dict
from agentrt.trace.replay_options import ReplayOptions

COUNT = ["0", "-1", "nan", "inf", "1.5", "x"]  # flags that count something (>= 1)
SIZE = ["-1", "nan", "inf", "1.5"]  # sizes where 0 means "none"
RATE = ["0", "-1", "nan", "inf", "-inf", "x"]  # finite numbers > 0
FINITE = ["nan", "inf", "-inf"]

ENGINE_COUNTS = ("--kv-cache-tokens", "--page-size", "--max-num-seqs", "--max-num-batched-tokens")
SERVE_COUNTS = ("--max-body-bytes", "--max-prompt-tokens", "--max-pending")
BENCH_SERVE_COUNTS = (
    "--clients", "--num-requests", "--output-len", "--rounds", "--turns", "--result-words",
)  # fmt: skip

# (command words, flag, bad values): every numeric flag of every command
CASES: list[tuple[list[str], str, list[str]]] = [
    (["demo"], "--max-tokens", COUNT),
    (["bench", "engine"], "--repeats", COUNT),
    (["bench", "engine"], "--max-num-batched-tokens", COUNT),
    (["bench", "tracker"], "--calls", COUNT),
    (["bench", "tracker"], "--workflows", COUNT),
    (["bench", "workflows"], "--instances", COUNT),
    (["bench", "workflows"], "--min-tokens", COUNT),
    (["bench", "workflows"], "--max-tokens", COUNT),
    (["bench", "sim"], "--calls", COUNT),
    *(
        (["bench", "kvflow"], flag, COUNT)
        for flag in (
            "--rounds",
            "--prefix",
            "--dynamic",
            "--output",
            "--instances",
            "--device-prefixes",
            "--repeats",
        )
    ),
    (["calibrate"], "--repeats", COUNT),
    (["run", "examples/pipeline.py"], "--timeout", RATE),
    (["replay", "t.jsonl"], "--speed", RATE),
    (["replay", "t.jsonl"], "--scale-tokens", RATE),
    (["replay", "t.jsonl"], "--max-requests", COUNT),
    (["replay", "t.jsonl"], "--kv-cache-tokens", [*COUNT, "15"]),  # below one 16-token page
    (["replay", "t.jsonl"], "--host-kv-cache-tokens", SIZE),
    (["replay", "t.jsonl"], "--jobs", COUNT),
    (["simulate"], "--agents", COUNT),
    (["simulate"], "--steps", COUNT),
    (["simulate"], "--replicas", COUNT),
    (["simulate"], "--seed", ["nan", "1.5"]),
    (["simulate"], "--start-hour", FINITE),
    (["simulate"], "--host-kv-tokens", SIZE),
    (["simulate"], "--max-tokens", COUNT),
    *((["serve"], flag, COUNT) for flag in (*ENGINE_COUNTS, *SERVE_COUNTS)),
    (["serve"], "--host-kv-cache-tokens", SIZE),
    (["serve"], "--seed", ["nan", "1.5"]),
    (["serve"], "--port", ["-1", "65536", "nan", "1.5"]),
    (["serve"], "--grace-seconds", RATE),
    (["serve"], "--arrival-wait-ms", ["-1", "nan", "inf", "x"]),
    (["serve"], "--pin-budget", ["-0.1", "1.5", "nan", "inf", "x"]),
    *((["bench", "serve"], flag, COUNT) for flag in (*ENGINE_COUNTS, *BENCH_SERVE_COUNTS)),
    (["bench", "serve"], "--host-kv-cache-tokens", SIZE),
    (["bench", "serve"], "--seed", ["nan", "1.5"]),
    (["bench", "serve"], "--scale-tokens", RATE),
    (["bench", "serve"], "--request-rate", RATE),
    (["bench", "serve"], "--pool-share", ["-0.1", "1.5", "nan", "inf", "x"]),
    (["bench", "serve"], "--pin-budget", ["-0.1", "1.5", "nan", "inf", "x"]),
    (["bench", "serve"], "--host-ratio", RATE),
]

PARAMS = [
    pytest.param(words, flag, bad, id=f"{' '.join(words[:2])} {flag}={bad}")
    for words, flag, values in CASES
    for bad in values
]


def _numeric_flags(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(command words, flag) of every option whose value is converted to a number."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _numeric_flags(sub, (*words, name))
        elif action.option_strings and action.type is not None:
            module = action.type.__module__
            if action.type in (int, float) or module == "agentrt.cli_types":
                yield words, action.option_strings[0]


def test_the_table_covers_every_numeric_flag():
    found = set(_numeric_flags(build_parser()))
    listed = {
        (tuple(w for w in words if not w.endswith((".jsonl", ".py"))), f) for words, f, _ in CASES
    }
    assert found == listed


@pytest.mark.parametrize("words, flag, bad", PARAMS)
def test_bad_number_is_a_usage_error_naming_the_flag(words, flag, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*words, f"{flag}={bad}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}: " in err and repr(bad) in err
    assert "Traceback" not in err


def test_float_flag_message_reads_like_the_docs(capsys):
    with pytest.raises(SystemExit):
        main(["replay", "t.jsonl", "--speed", "nan"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "agentrt replay: error: argument --speed: must be a finite number > 0, got 'nan'"


def test_kv_pool_below_one_page_names_the_page(capsys):
    with pytest.raises(SystemExit):
        main(["replay", "t.jsonl", "--kv-cache-tokens", "8"])
    assert "must be an integer >= 16 (one KV page), got '8'" in capsys.readouterr().err


def test_bad_numbers_fail_before_torch_is_imported():
    """All bad flags in one fresh interpreter: each exits 2 and torch is never imported
    (so no model, engine or workload was started)."""
    argvs = [[*words, f"{flag}={bad}"] for words, flag, values in CASES for bad in values[:2]]
    script = (
        "import sys\n"
        "from agentrt.cli import main\n"
        f"for argv in {argvs!r}:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 2, (argv, exc.code)\n"
        "    else:\n"
        "        raise AssertionError(argv)\n"
        "print('ok', len(" + repr(argvs) + "))\n"
    )
    assert run_fresh(script, ("torch",)).startswith("ok")


def test_min_tokens_above_max_tokens_is_an_error_before_work(capsys):
    argv = ["bench", "workflows", "--min-tokens", "9", "--max-tokens", "8"]
    assert main(argv) == 2
    assert "--min-tokens (9) must not exceed --max-tokens (8)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "field, value",
    [
        ("kv_cache_tokens", 8),  # below one page
        ("kv_cache_tokens", 0),
        ("kv_cache_tokens", math.nan),
        ("kv_cache_tokens", 1e6),  # a float is not a token count
        ("page_size", 0),
        ("num_pages", 0),
        ("host_kv_cache_tokens", -1),
        ("host_kv_cache_tokens", math.inf),
        ("num_host_pages", -1),
        ("max_num_batched_tokens", 0),
        ("max_num_seqs", -5),
        ("prefetch_k", -1),
        ("max_num_seqs", True),
    ],
)
def test_engine_config_rejects_bad_numbers_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^EngineConfig\.{field} must be an integer >= ") as e:
        EngineConfig(**{field: value})
    assert "\n" not in str(e.value)


def test_engine_config_rounds_a_pool_up_to_whole_pages():
    assert EngineConfig(kv_cache_tokens=17).kv_capacity_tokens == 32
    assert EngineConfig(kv_cache_tokens=16, host_kv_cache_tokens=1).num_host_pages == 1
    assert EngineConfig(kv_cache_tokens=16, host_kv_cache_tokens=0).num_host_pages == 0


@pytest.mark.parametrize("speed", [math.nan, math.inf, 0.0, -1.0])
def test_replay_options_reject_bad_speed_and_scale(speed):
    with pytest.raises(ValueError, match="speed must be a finite number > 0"):
        ReplayOptions(speed=speed)
    with pytest.raises(ValueError, match="scale_tokens must be a finite number > 0"):
        ReplayOptions(scale_tokens=speed)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"replicas": 0}, "CosimConfig.replicas"),
        ({"max_tokens": 0}, "CosimConfig.max_tokens"),
        ({"move_factor": math.nan}, "CosimConfig.move_factor"),
        ({"move_factor": math.inf}, "CosimConfig.move_factor"),
        ({"kv_cache_tokens": 4}, "EngineConfig.kv_cache_tokens"),
        ({"host_kv_cache_tokens": -16}, "EngineConfig.host_kv_cache_tokens"),
    ],
)
def test_cosim_config_rejects_bad_numbers_when_made(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        CosimConfig(**kwargs)


@pytest.mark.parametrize(
    "field, value",
    [("radius", math.nan), ("radius", math.inf), ("talk_probability", math.nan)],
)
def test_scenario_rejects_nan_and_infinity(field, value):
    with pytest.raises(ScenarioError, match=rf"{field}: Input should be a finite number"):
        scenario_from_dict({field: value}, "test")


def test_cost_profile_rejects_infinity():
    from agentrt.engine.cost_model.profile import load_profile

    data = load_profile("h100-llama3-8b").model_dump()
    data["decode"]["per_seq_s"] = math.inf
    with pytest.raises(ValueError, match="finite number"):
        CostProfile.model_validate(data)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["bench", "kvflow", "--policies", "lru,nope"], "--policies: unknown eviction policy"),
        (["bench", "kvflow", "--policies", "lru,lru"], "--policies must name distinct"),
        (["bench", "kvflow", "--profile", "nope"], "unknown cost profile 'nope'"),
        (["bench", "kvflow", "--compare-sim"], "--compare-sim compares the builtin"),
        (["bench", "sim", "--profile", "nope.json"], "cost profile file 'nope.json'"),
        (["replay", "TRACE", "--profile", "nope"], "unknown cost profile 'nope'"),
    ],
)
def test_bad_names_fail_before_any_run(argv, needle, tmp_path, capsys):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [1]}\n')
    assert main([str(trace) if a == "TRACE" else a for a in argv]) == 2
    out, err = capsys.readouterr()
    assert needle in err
    assert out == ""  # nothing ran: no progress line, no table
