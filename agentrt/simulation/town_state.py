"""The state of one town resident at one step, and the digest used for memories and hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TownState:
    """A resident at a step. The first seven fields are all the ``dense`` dynamics use
    (its state hash covers exactly those, so old world hashes stay reproducible); the
    rest belong to the ``generative`` dynamics (`agentrt.simulation.town_generative`)."""

    pos: tuple[int, int]
    place: str
    activity: str
    cooldown: int
    talk_to: int  # -1: nobody
    said: str
    memory: str
    asleep: bool = False
    action_left: int = 0  # steps left in the current action; 0: decide the next one
    block: str = ""  # the routine place the current action belongs to
    actions: int = 0  # actions decided so far (picks the action's spot)
    chat_left: int = 0  # steps of the current conversation left (talk_to is the partner)
    seen: tuple[int, ...] = ()  # awake agents perceived at the previous step
    partners: tuple[int, ...] = ()  # recent conversation partners (no second chat)
    chat_step: int = -1  # the step the current conversation was started or joined


def digest(*parts: object) -> str:
    """A short stable digest of ``parts`` (their ``repr``)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


def draw(*parts: object) -> float:
    """A deterministic uniform number in [0, 1) from ``parts`` (seeded draws that do not
    depend on the order in which agent steps run)."""
    return int(digest(*parts), 16) / 2.0**64
