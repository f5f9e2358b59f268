"""Errors the engine raises: models it cannot find or serve, requests it cannot take."""

from __future__ import annotations


class ModelNotFoundError(FileNotFoundError):
    """A model path or id could not be resolved to a directory of safetensors weights."""


class UnsupportedModelError(ValueError):
    """The model exists but its architecture or configuration is not one the engine serves."""


class PromptTooLongError(ValueError):
    """A prompt does not fit the model's context or the engine's KV capacity."""
