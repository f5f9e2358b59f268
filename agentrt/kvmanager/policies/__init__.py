"""Built-in eviction policies; importing this package registers them."""

from agentrt.kvmanager.policies.lru import LRUPolicy

__all__ = ["LRUPolicy"]
