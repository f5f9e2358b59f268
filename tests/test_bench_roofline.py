"""`bench engine`'s roofline: the bandwidth probes, L3 parsing, the decode-step window
and the bound's arithmetic."""

from __future__ import annotations

import math

import pytest
from engine_helpers import make_engine

from agentrt.bench.bandwidth import (
    MIN_PROBE_BYTES,
    ReadProbe,
    measure_bandwidth,
    parse_l3_bytes,
    probe_bytes,
)
from agentrt.bench.roofline import DecodeSteps, decode_steps, decode_tokens_for, roofline


def test_l3_parsed_from_both_lscpu_formats():
    assert parse_l3_bytes("L2 cache: 2097152 (2 instances)\nL3 cache: 33554432 (1 instance)\n") == (
        32 * 1024**2
    )
    assert parse_l3_bytes("L3 cache:                 32 MiB (1 instance)") == 32 * 1024**2
    assert parse_l3_bytes("L3 cache: 1.5 GiB (4 instances)") == 1536 * 1024**2
    assert parse_l3_bytes("L2 cache: 2 MiB (2 instances)") is None


def test_probe_buffer_is_four_times_l3_and_at_least_256_mib():
    assert probe_bytes(None) == MIN_PROBE_BYTES
    assert probe_bytes(32 * 1024**2) == MIN_PROBE_BYTES
    assert probe_bytes(256 * 1024**2) == 1024**3


def test_bandwidth_probes_are_positive_and_consistent():
    bw = measure_bandwidth("cpu")
    figures = [bw["read_gbs"], bw["read_numpy_gbs"], bw["copy_traffic_gbs"]]
    assert all(math.isfinite(f) and f > 0 for f in figures), bw
    assert bw["probe_bytes"] >= 4 * (bw["l3_bytes"] or 0)
    assert bw["threads"] >= 1
    # a read cannot move more than twice the bytes a copy (a read and a write) moves
    assert bw["read_gbs"] <= 2 * bw["copy_traffic_gbs"], bw


def test_decode_steps_times_only_steps_where_every_sequence_decodes(tiny_models):
    engine = make_engine(tiny_models["llama"], max_num_batched_tokens=64)
    steps = decode_steps(engine, [[5] * 8, [7] * 8], 5)
    # tokens 2..5 of each: 4 steps; the step making token k+1 reads 8 + k tokens per sequence
    assert steps.batch == 2 and steps.steps == 4
    assert steps.mean_context_tokens == 2 * (9 + 10 + 11 + 12) / 4
    assert steps.mean_step_s > 0


def test_a_probe_runs_after_each_timed_step_and_reads_between_them(tiny_models):
    engine = make_engine(tiny_models["llama"], max_num_batched_tokens=64)
    read = ReadProbe(16 * 1024**2)
    with pytest.raises(ValueError, match="has not read yet"):
        _ = read.gbs
    calls = []

    def probe() -> None:
        calls.append(engine.has_unfinished_requests())
        read()

    steps = decode_steps(engine, [[5] * 8, [7] * 8], 5, after_timed_step=probe)
    assert len(calls) == steps.steps == 4
    assert calls == [True, True, True, False]  # the last timed step finished both
    assert math.isfinite(read.gbs) and read.gbs > 0


def test_decode_steps_without_a_full_batch_step_is_a_clear_error(tiny_models):
    engine = make_engine(tiny_models["llama"], max_num_batched_tokens=16)
    with pytest.raises(ValueError, match="no step decoded all 2 sequences at once"):
        decode_steps(engine, [[5] * 8, [7] * 64], 2)


def test_batch_16_decode_gets_enough_tokens_to_outlast_its_prefill(tiny_models):
    budget = 256
    prompts = [[3 + i] * 64 for i in range(16)]
    new = decode_tokens_for(16 * 64, budget, tokens=8)
    engine = make_engine(tiny_models["llama"], max_num_batched_tokens=budget)
    assert decode_steps(engine, prompts, new).steps >= 8


def test_roofline_bound_is_weights_plus_kv_over_read_bandwidth():
    steps = DecodeSteps(batch=16, steps=10, mean_step_s=0.040, mean_context_tokens=4000)
    out = roofline(steps, weight_bytes=200_000_000, kv_bytes_per_token=50_000, read_gbs=40.0)
    assert out["kv_bytes_read"] == 200_000_000
    assert out["bound_ms"] == pytest.approx(10.0)
    assert out["fraction"] == pytest.approx(0.25)
    assert out["step_ms"] == pytest.approx(40.0)
    assert out["read_gbs"] == 40.0
