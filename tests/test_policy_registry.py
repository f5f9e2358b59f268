"""Eviction-policy registry: built-ins registered on import, custom policies, conflicts."""

from collections.abc import Iterator

import pytest
from radix_helpers import cache

from agentrt.kvmanager import (
    EvictionPolicy,
    PageAllocator,
    RadixNode,
    RadixTree,
    available_policies,
    get_policy,
    register_policy,
)
from agentrt.kvmanager import policy as policy_module
from agentrt.kvmanager.policies.lru import LRUPolicy


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    saved = dict(policy_module._REGISTRY)
    yield
    policy_module._REGISTRY.clear()
    policy_module._REGISTRY.update(saved)


def test_lru_is_registered_on_import() -> None:
    assert "lru" in available_policies()
    policy = get_policy("lru")
    assert isinstance(policy, LRUPolicy) and policy.name == "lru"
    assert get_policy(policy) is policy


def test_unknown_policy_names_registered_ones() -> None:
    with pytest.raises(ValueError, match="unknown eviction policy 'nope'; registered: .*lru"):
        get_policy("nope")
    with pytest.raises(ValueError, match="registered: .*lru"):
        RadixTree(2, PageAllocator(4), policy="nope")


def test_register_policy_and_use_it(scratch_registry: None) -> None:
    @register_policy("mru-test")
    class MRU(EvictionPolicy):
        def key(self, node: RadixNode) -> int:
            return -node.last_access

    assert MRU.name == "mru-test" and "mru-test" in available_policies()
    allocator = PageAllocator(8)
    tree = RadixTree(1, allocator, policy="mru-test")
    cache(tree, [1])
    cache(tree, [2])
    tree.match_prefix([1])
    assert tree.eviction.evict(1) == 1
    assert tree.match_prefix([1]).num_tokens == 0  # most recent goes first
    assert tree.match_prefix([2]).num_tokens == 1


def test_register_conflicts(scratch_registry: None) -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_policy("lru")
        class Other(EvictionPolicy):
            def key(self, node: RadixNode) -> int:
                return 0

    with pytest.raises(TypeError):
        register_policy("bad")(int)  # type: ignore[arg-type]
    assert get_policy("lru").__class__ is LRUPolicy


def test_capabilities_are_declared_per_policy() -> None:
    flags = {
        name: (
            get_policy(name).key_is_last_access,
            get_policy(name).reads_hints,
            get_policy(name).uses_host_tier,
            get_policy(name).prefetch,
        )
        for name in ("lru", "hicache", "ideal", "kvflow", "belady")
    }
    assert flags == {
        "lru": (True, False, False, False),
        "hicache": (True, False, True, False),
        "ideal": (True, False, False, False),
        "kvflow": (False, True, True, True),
        "belady": (False, False, True, True),
    }


def test_a_subclass_replacing_key_or_hints_does_not_inherit_the_declaration() -> None:
    """An LRU subclass with its own key is not read as last-access by the eviction fast
    path; one with its own `update_hints` is fed hints; an explicit declaration wins."""

    class Newest(LRUPolicy):
        def key(self, node: RadixNode) -> int:
            return -node.last_access

    class Hinted(LRUPolicy):
        def update_hints(self, agent_ste: dict[str, float]) -> None:
            self.seen = agent_ste

    class Declared(LRUPolicy):
        key_is_last_access = True
        reads_hints = False

        def key(self, node: RadixNode) -> int:
            return node.last_access

        def update_hints(self, agent_ste: dict[str, float]) -> None:
            pass

    assert not Newest.key_is_last_access and not Newest.reads_hints
    assert Hinted.key_is_last_access and Hinted.reads_hints
    assert Declared.key_is_last_access and not Declared.reads_hints
