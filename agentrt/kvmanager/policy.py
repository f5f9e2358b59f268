"""Eviction policies for the radix tree, and the registry that names them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode


class EvictionPolicy(ABC):
    """Orders evictable radix-tree leaves.

    - ``key(node)``: a sortable value, lowest evicts first (ties by node creation order).
      It is read when a leaf becomes a candidate during one ``evict`` call, so it must
      not depend on state eviction changes, and it must not mutate the node or the tree.
    - ``name``: the registry name (set by ``register_policy``). Policies are made with no
      arguments by ``get_policy(name)``; hints arrive through ``update_hints`` (STE per
      agent) and ``on_request`` (an agent's call was admitted), no-ops by default.

    Class flags declare capabilities: ``uses_host_tier`` (keep a host copy of evicted
    pages; False: a miss recomputes), ``prefetch`` (load due agents' prefixes early),
    ``device_pool_includes_host`` (``ideal``: host pages join the device pool),
    ``key_is_last_access`` (``key(node)`` is ``node.last_access``; eviction skips the
    call) and ``reads_hints``. A subclass whose body defines ``key`` (``update_hints``)
    without declaring ``key_is_last_access`` (``reads_hints``) gets False (True).
    """

    name: ClassVar[str] = ""
    uses_host_tier: ClassVar[bool] = False
    prefetch: ClassVar[bool] = False
    device_pool_includes_host: ClassVar[bool] = False
    key_is_last_access: ClassVar[bool] = False
    reads_hints: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        body = cls.__dict__
        if "key" in body and "key_is_last_access" not in body:
            cls.key_is_last_access = False
        if "update_hints" in body and "reads_hints" not in body:
            cls.reads_hints = True

    @abstractmethod
    def key(self, node: RadixNode) -> Any:
        """Sort key of an evictable leaf: lower evicts first."""

    def wants_host_copy(self, node: RadixNode) -> bool:
        """Whether an evicted device node is worth writing back to host."""
        return True

    def prefetch_bound(self, node: RadixNode) -> Any:
        """Prefetching ``node`` may evict only device nodes whose key is below this."""
        return self.key(node)

    def update_hints(self, agent_ste: Mapping[str, float]) -> None:  # noqa: B027
        """New steps-to-execution per agent (a snapshot; unknown agents are not due)."""

    def on_request(self, agent_id: str | None) -> None:  # noqa: B027
        """A request of ``agent_id`` was admitted (lets an oracle advance its future)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_REGISTRY: dict[str, type[EvictionPolicy]] = {}

P = TypeVar("P", bound=type[EvictionPolicy])


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator: register an ``EvictionPolicy`` subclass under ``name``."""

    def decorate(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, EvictionPolicy)):
            raise TypeError(f"{cls!r} is not an EvictionPolicy subclass")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"eviction policy {name!r} is already registered to {existing.__qualname__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def get_policy(policy: str | EvictionPolicy) -> EvictionPolicy:
    """Return ``policy`` itself if it is an instance, else a new instance of that name."""
    if isinstance(policy, EvictionPolicy):
        return policy
    cls = _REGISTRY.get(policy)
    if cls is None:
        raise ValueError(
            f"unknown eviction policy {policy!r}; registered: {', '.join(available_policies())}"
        )
    return cls()


def available_policies() -> list[str]:
    """Names of the registered policies, sorted."""
    return sorted(_REGISTRY)
