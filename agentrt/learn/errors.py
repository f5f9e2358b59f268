"""Errors of `agentrt.learn`: every one is a `ValueError` with a one-line message."""

from __future__ import annotations


class LearnError(ValueError):
    """A bad argument to a learner, or a bad learned-graph document."""


class LearnedGraphFormatError(LearnError):
    """A learned-graph JSON document that does not follow the schema (`learn/schema.py`)."""
