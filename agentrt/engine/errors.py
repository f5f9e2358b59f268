"""Errors the engine raises: models it cannot find or serve, requests it cannot take."""

from __future__ import annotations


class ModelNotFoundError(FileNotFoundError):
    """A model path or id could not be resolved to a directory of safetensors weights."""


class UnsupportedModelError(ValueError):
    """The model exists but its architecture or configuration is not one the engine serves."""


class PromptTooLongError(ValueError):
    """A prompt does not fit the model's context or the engine's KV capacity."""


class RequestFailedError(RuntimeError):
    """A request failed inside an engine step (sampling, the model or detokenizing met a
    fault only it causes); it was ended with finish reason ``error`` and its KV released,
    while the other requests went on."""
