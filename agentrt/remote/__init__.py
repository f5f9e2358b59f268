"""Model calls on a remote OpenAI-compatible server (`backend="openai"`)."""

from agentrt.remote.openai_backend import OpenAIBackend, RemoteError, RemoteSettings

__all__ = ["OpenAIBackend", "RemoteError", "RemoteSettings"]
