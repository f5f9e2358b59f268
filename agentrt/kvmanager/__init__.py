"""KV bookkeeping: page allocator, radix prefix tree, eviction policies (no torch)."""

from agentrt.kvmanager import policies as _policies  # noqa: F401  (registers built-ins)
from agentrt.kvmanager.errors import OutOfPagesError
from agentrt.kvmanager.manager import KVCacheManager
from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import (
    EvictionPolicy,
    available_policies,
    get_policy,
    register_policy,
)
from agentrt.kvmanager.radix_tree import (
    HostMatch,
    InsertResult,
    MatchResult,
    RadixNode,
    RadixTree,
)
from agentrt.kvmanager.stats import KVStats
from agentrt.kvmanager.tiering import PendingLoad
from agentrt.kvmanager.transfer import KVTransfer, ManualTransfer, NullTransfer, TransferOp

__all__ = [
    "EvictionPolicy",
    "HostMatch",
    "InsertResult",
    "KVCacheManager",
    "KVStats",
    "KVTransfer",
    "ManualTransfer",
    "NullTransfer",
    "PendingLoad",
    "TransferOp",
    "MatchResult",
    "OutOfPagesError",
    "PageAllocator",
    "RadixNode",
    "RadixTree",
    "available_policies",
    "get_policy",
    "register_policy",
]
