"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import FAMILIES, make_tiny_model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny random-weight model directory per supported family, built once per session."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {family: make_tiny_model(family, root / family) for family in FAMILIES}
