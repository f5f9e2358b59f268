"""agentrt: an agentic workflow runtime with KV-aware scheduling and a built-in batched engine."""

__version__ = "0.1.0"
