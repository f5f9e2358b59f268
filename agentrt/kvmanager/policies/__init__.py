"""Built-in eviction policies; importing this package registers them."""

from agentrt.kvmanager.policies.belady import BeladyPolicy
from agentrt.kvmanager.policies.hicache import HiCachePolicy, IdealPolicy
from agentrt.kvmanager.policies.kvflow import KVFlowPolicy
from agentrt.kvmanager.policies.lru import LRUPolicy

__all__ = ["BeladyPolicy", "HiCachePolicy", "IdealPolicy", "KVFlowPolicy", "LRUPolicy"]
