"""HiCache-like baseline (SGLang): LRU over device pages, evicted pages written back to a
host tier and loaded back reactively when a request for them arrives; no prefetch."""

from __future__ import annotations

from agentrt.kvmanager.policies.lru import LRUPolicy
from agentrt.kvmanager.policy import register_policy


@register_policy("hicache")
class HiCachePolicy(LRUPolicy):
    uses_host_tier = True


@register_policy("ideal")
class IdealPolicy(LRUPolicy):
    """The bound no policy beats: the device pool also gets the host pool's pages (sized by
    the caller large enough for the workload), so a cached prefix never leaves the device.
    Eviction order is LRU, for the case where even that pool overflows."""

    device_pool_includes_host = True
