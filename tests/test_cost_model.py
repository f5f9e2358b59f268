"""Cost profiles, the virtual clock, the cost model and the least-squares fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentrt.engine.clock import Clock, VirtualClock, WallClock
from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model import (
    CostModel,
    ProfileError,
    StepFeatures,
    load_profile,
    profile_names,
)
from agentrt.engine.cost_model.fit import COLUMNS, fit_step_costs, nnls

SHIPPED = ("cpu-smollm2-135m", "h100-llama3-8b", "l4-llama3-8b")


def test_shipped_profiles_load_by_name_with_sources():
    assert set(SHIPPED) <= set(profile_names())
    for name in SHIPPED:
        profile = load_profile(name)
        assert profile.name == name
        assert profile.sources and all(s.strip() for s in profile.sources)
    assert load_profile("h100-llama3-8b").kv_bytes_per_token == 2 * 32 * 8 * 128 * 2


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _valid() -> dict:
    return json.loads(load_profile("h100-llama3-8b").to_json())


def test_profile_from_path_round_trips(tmp_path):
    assert load_profile(_write(tmp_path, _valid())) == load_profile("h100-llama3-8b")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.pop("decode"), "decode"),
        (lambda d: d["prefill"].update(per_token_s=-1.0), "per_token_s"),
        (lambda d: d.update(sources=[]), "sources"),
        (lambda d: d.update(host_device_bytes_per_s=0), "host_device_bytes_per_s"),
        (lambda d: d.update(typo_field=1), "typo_field"),
    ],
)
def test_bad_profile_file_is_a_clear_error(tmp_path, change, needle):
    data = _valid()
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError, match=needle) as info:
        load_profile(path)
    assert str(path) in str(info.value)


def test_unparsable_missing_and_unknown_profiles(tmp_path):
    with pytest.raises(ProfileError, match="invalid cost profile"):
        load_profile(_write(tmp_path, "{not json"))
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.json")
    with pytest.raises(ProfileError, match="h100-llama3-8b"):  # lists the shipped names
        load_profile("a100-nonexistent")


def test_engine_config_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        EngineConfig(backend="gpu-magic")


def test_clocks():
    assert isinstance(WallClock(), Clock) and isinstance(VirtualClock(), Clock)
    clock = VirtualClock(5.0)
    readings = [clock.now(), clock.advance(0.5), clock.advance(0.0), clock.advance_to(1.0)]
    readings.append(clock.advance_to(7.0))
    assert readings == [5.0, 5.5, 5.5, 5.5, 7.0]
    for bad in (-1e-9, float("nan")):
        with pytest.raises(ValueError, match="back"):
            clock.advance(bad)
    assert clock.now() == 7.0
    wall = WallClock()
    assert wall.now() <= wall.now()
    past = wall.now()
    assert wall.advance_to(past) >= past  # at once
    target = wall.now() + 0.01
    assert wall.advance_to(target) >= target  # a wall clock cannot jump: it waits


features = st.builds(
    StepFeatures,
    st.integers(0, 10_000),
    st.integers(0, 512),
    st.integers(0, 10**8),
    st.integers(0, 10**7),
)


@pytest.mark.parametrize("name", SHIPPED)
@given(f=features, which=st.integers(0, 3), more=st.integers(1, 10_000))
def test_step_cost_is_monotone_in_every_feature(name, f, which, more):
    model = CostModel(load_profile(name))
    bigger = list(f)
    bigger[which] += more
    assert model.step_seconds(StepFeatures(*bigger)) >= model.step_seconds(f) > 0


@pytest.mark.parametrize("name", SHIPPED)
def test_prefill_decode_and_transfer_costs_grow(name):
    model = CostModel(load_profile(name))
    chunks = ((16, 0), (256, 0), (256, 4096))
    prefill = [
        model.step_seconds(StepFeatures(n, 0, n * c + n * (n + 1) // 2, 0)) for n, c in chunks
    ]
    batches = ((1, 512), (64, 512), (64, 10**6))
    decode = [model.step_seconds(StepFeatures(0, b, 0, ctx)) for b, ctx in batches]
    transfer = [model.transfer_seconds(b) for b in (0, 1 << 20, 1 << 30)]
    assert prefill == sorted(prefill) and decode == sorted(decode)
    assert transfer[0] == 0.0 and transfer[1] < transfer[2]


def test_roofline_profile_takes_the_max_of_weights_and_compute():
    model = CostModel(load_profile("h100-llama3-8b"))
    d = model.profile.decode
    # Small decode batches are bound by reading the weights, not by their compute.
    small = model.step_seconds(StepFeatures(0, 1, 0, 0)) - model.profile.step_overhead_s
    assert small == pytest.approx(d.weights_read_s)
    big = model.step_seconds(StepFeatures(0, 4096, 0, 0)) - model.profile.step_overhead_s
    assert big == pytest.approx(4096 * d.per_seq_s)


def test_nnls_keeps_coefficients_non_negative():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    b = np.array([3.0, 2.0, 1.0])  # unconstrained slope is -1
    x = nnls(a, b)
    assert x[1] == 0.0 and x[0] == pytest.approx(2.0)


def test_fit_recovers_known_coefficients():
    true = dict(zip(COLUMNS, (0.01, 2e-4, 1e-3, 1e-8, 5e-7), strict=True))
    rng = np.random.default_rng(0)
    feats = [
        StepFeatures(int(t), int(b), int(p), int(c))
        for t, b, p, c in zip(
            rng.integers(0, 1024, 40),
            rng.integers(0, 64, 40),
            rng.integers(0, 10**6, 40),
            rng.integers(0, 10**5, 40),
            strict=True,
        )
    ]
    secs = [float(np.dot(list(true.values()), [1, *f])) for f in feats]
    fit = fit_step_costs(feats, secs)
    for key, value in true.items():
        assert fit.coef[key] == pytest.approx(value, rel=1e-6)
    assert fit.max_abs_relative_error < 1e-9
    with pytest.raises(ValueError, match="samples"):
        fit_step_costs(feats[:2], secs[:2])
