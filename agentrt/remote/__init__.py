"""Model calls on a remote OpenAI-compatible server (`backend="openai"`)."""

from agentrt.remote.openai_backend import OpenAIBackend
from agentrt.remote.settings import RemoteError, RemoteSettings

__all__ = ["OpenAIBackend", "RemoteError", "RemoteSettings"]
