"""KV bookkeeping: page allocator, radix prefix tree, eviction policies (no torch)."""

from agentrt.kvmanager import policies as _policies  # noqa: F401  (registers built-ins)
from agentrt.kvmanager.errors import OutOfPagesError
from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import (
    EvictionPolicy,
    available_policies,
    get_policy,
    register_policy,
)
from agentrt.kvmanager.radix_tree import InsertResult, MatchResult, RadixNode, RadixTree

__all__ = [
    "EvictionPolicy",
    "InsertResult",
    "MatchResult",
    "OutOfPagesError",
    "PageAllocator",
    "RadixNode",
    "RadixTree",
    "available_policies",
    "get_policy",
    "register_policy",
]
