"""Least-squares fit of step costs: measured (features, seconds) -> profile coefficients.

Non-negative least squares over five columns, rows weighted by 1/measured (relative
error); exact by solving every subset of columns and keeping the best non-negative one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentrt.engine.cost_model.model import StepFeatures

COLUMNS = (
    "constant_s",
    "prefill_per_token_s",
    "decode_per_seq_s",
    "prefill_per_pair_s",
    "decode_per_context_token_s",
)


def design_row(f: StepFeatures) -> list[float]:
    """The row of `COLUMNS` (`StepFeatures` lists its fields in the same order)."""
    return [1.0, *map(float, f)]


def nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin ||a x - b|| subject to x >= 0, by enumerating column subsets (few columns)."""
    n = a.shape[1]
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    a = a / scale
    best, best_res = np.zeros(n), float(np.sum(b * b))
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            x, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if np.any(x < 0):
                continue
            res = float(np.sum((a[:, cols] @ x - b) ** 2))
            if res < best_res:
                best = np.zeros(n)
                best[list(cols)] = x
                best_res = res
    return best / scale


@dataclass
class StepFit:
    """Fitted coefficients (by `COLUMNS`) and the relative error of every sample."""

    coef: dict[str, float]
    predicted_s: list[float]
    relative_errors: list[float]

    @property
    def mean_abs_relative_error(self) -> float:
        return float(np.mean(np.abs(self.relative_errors)))

    @property
    def max_abs_relative_error(self) -> float:
        return float(np.max(np.abs(self.relative_errors)))


def fit_step_costs(features: Sequence[StepFeatures], seconds: Sequence[float]) -> StepFit:
    """Fit `seconds ~ constant + per-feature rates` with non-negative rates."""
    if len(features) != len(seconds) or len(features) < len(COLUMNS):
        raise ValueError(f"need >= {len(COLUMNS)} samples with one time each to fit")
    y = np.asarray(seconds, dtype=float)
    if np.any(y <= 0):
        raise ValueError("measured step times must be positive")
    a = np.asarray([design_row(f) for f in features], dtype=float)
    w = 1.0 / y
    x = nnls(a * w[:, None], y * w)
    pred = a @ x
    return StepFit(
        coef=dict(zip(COLUMNS, (float(v) for v in x), strict=True)),
        predicted_s=[float(v) for v in pred],
        relative_errors=[float(v) for v in (pred - y) / y],
    )
