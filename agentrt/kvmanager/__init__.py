"""KV bookkeeping: page allocator, radix prefix tree, eviction policies (no torch)."""

from agentrt.kvmanager import policies as _policies  # noqa: F401  (registers built-ins)
from agentrt.kvmanager.errors import OutOfPagesError
from agentrt.kvmanager.eviction import DeviceEviction
from agentrt.kvmanager.host_tier import HostTier, PendingLoad
from agentrt.kvmanager.loader import Loader, Prepared
from agentrt.kvmanager.locks import PathLocks
from agentrt.kvmanager.manager import KVCacheManager
from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import (
    EvictionPolicy,
    available_policies,
    get_policy,
    register_policy,
)
from agentrt.kvmanager.radix_node import HostMatch, InsertResult, MatchResult, RadixNode
from agentrt.kvmanager.radix_tree import RadixTree
from agentrt.kvmanager.stats import KVStats
from agentrt.kvmanager.transfer import KVTransfer, ManualTransfer, NullTransfer, TransferOp

__all__ = [
    "DeviceEviction",
    "EvictionPolicy",
    "HostTier",
    "Loader",
    "HostMatch",
    "InsertResult",
    "KVCacheManager",
    "KVStats",
    "KVTransfer",
    "ManualTransfer",
    "NullTransfer",
    "PendingLoad",
    "Prepared",
    "TransferOp",
    "MatchResult",
    "OutOfPagesError",
    "PageAllocator",
    "PathLocks",
    "RadixNode",
    "RadixTree",
    "available_policies",
    "get_policy",
    "register_policy",
]
