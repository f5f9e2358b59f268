"""The LLM call chains of the ``generative`` town, modelled on Generative Agents.

Source: the Generative Agents code (Park et al., UIST'23;
``persona/cognitive_modules/{perceive,plan,converse}.py``). Each chain is made *one call
after another* inside one agent step, as there:

- **perceive** (``perceive.py``): one poignancy score per newly perceived event, at most
  ``ATTENTION`` (``att_bandwidth``) nearest ones.
- **day plan** (``plan._long_term_planning``): wake-up hour, the day in broad strokes,
  one schedule line per waking hour; run when the agent wakes (there: at a day's start).
- **action** (``plan._determine_action``): a task decomposition when a new hour-block
  starts, then the 8 short calls of ``ACTION_TOKENS``.
- **conversation** (``plan._chat_react``, ``converse.agent_chat_v2``): decide-to-talk,
  then per utterance a relationship summary and the utterance (its prompt holds the
  conversation so far: ``LLMCall.history``), up to 8 rounds of 2; then a summary and both
  agents' replans. The initiator runs all of it.

Output lengths are estimated typical answers (Generative Agents' ``max_tokens`` are only
caps): a score or yes/no a few tokens, a location or triple about a dozen, an utterance a
sentence or two, a decomposition or schedule 5-10 timed subtasks.
"""

from __future__ import annotations

from agentrt.simulation.world import LLMCall

ATTENTION = 3  # perceived events scored per step (att_bandwidth)
MAX_UTTERANCES = 16  # agent_chat_v2: 8 rounds x 2 speakers
UTTERANCE_CHARS = 100  # "Name: one or two sentences\n"
ACTION_TOKENS = {  # the action chain's calls, in order, with their output lengths
    "sector": 6,
    "arena": 6,
    "game object": 6,
    "emoji": 4,
    "event triple": 12,
    "object state": 12,
    "object emoji": 4,
    "object event triple": 12,
}
ACTION_STEPS = tuple(ACTION_TOKENS)
POIGNANCY_TOKENS = 4
YES_NO_TOKENS = 4
WAKE_HOUR_TOKENS = 4
DAILY_PLAN_TOKENS = 96
HOURLY_TOKENS = 12
DECOMPOSE_TOKENS = 96
RELATIONSHIP_TOKENS = 32
UTTERANCE_TOKENS = 32
SUMMARY_TOKENS = 24
RESCHEDULE_TOKENS = 64


def perceive_calls(clock: str, events: list[tuple[str, str]]) -> list[LLMCall]:
    """One poignancy call per ``(name, activity)`` newly perceived."""
    return [
        LLMCall(
            "perceive",
            f"It is {clock}. You notice {name}, who is {activity}. On a scale of 1 to 10, "
            "how poignant is this event for you?",
            POIGNANCY_TOKENS,
        )
        for name, activity in events
    ]


def day_plan_calls(clock: str, wake_hour: int) -> list[LLMCall]:
    """Wake-up hour, the day in broad strokes, one schedule line per waking hour."""
    calls = [
        LLMCall("decide", f"It is {clock}. When do you usually wake up?", WAKE_HOUR_TOKENS),
        LLMCall(
            "decide",
            f"It is {clock}. Write your plan for today in broad strokes, with times.",
            DAILY_PLAN_TOKENS,
        ),
    ]
    calls += [
        LLMCall("decide", f"Your schedule today. At {h:02d}:00 you are", HOURLY_TOKENS)
        for h in range(wake_hour, 24)
    ]
    return calls


def action_calls(clock: str, place: str, decompose: bool) -> list[LLMCall]:
    """The chain that picks the next action (and decomposes a new hour-block first)."""
    calls = []
    if decompose:
        calls.append(
            LLMCall(
                "decide",
                f"It is {clock}. Your routine takes you to {place} now. Break the next hour "
                "into subtasks with their durations in minutes.",
                DECOMPOSE_TOKENS,
            )
        )
    calls += [
        LLMCall(
            "decide",
            f"It is {clock}, at {place}. For your next subtask, give the {what}.",
            ACTION_TOKENS[what],
        )
        for what in ACTION_STEPS
    ]
    return calls


def talk_decision_call(clock: str, partner: str, partner_activity: str) -> LLMCall:
    """Decide-to-talk: whether to start a conversation with a newly perceived agent."""
    return LLMCall(
        "decide",
        f"It is {clock}. You see {partner}, who is {partner_activity}. "
        "Do you start a conversation? Answer yes or no.",
        YES_NO_TOKENS,
    )


def conversation_calls(me: str, partner: str, utterances: int) -> list[LLMCall]:
    """``utterances`` turns (relationship + line each), a summary and two replans; the
    initiator runs them after a yes from `talk_decision_call`."""
    calls = []
    for k in range(utterances):
        speaker, other = (me, partner) if k % 2 == 0 else (partner, me)
        calls.append(
            LLMCall(
                "converse",
                f"Summarize in one sentence what {speaker} knows about {other}.",
                RELATIONSHIP_TOKENS,
            )
        )
        calls.append(
            LLMCall(
                "converse",
                f"{speaker} and {other} are talking. The conversation so far follows. "
                f"What does {speaker} say next?",
                UTTERANCE_TOKENS,
                history=True,
            )
        )
    calls.append(
        LLMCall(
            "converse",
            f"Summarize your conversation with {partner} in one sentence. It follows.",
            SUMMARY_TOKENS,
            history=True,
        )
    )
    calls += [
        LLMCall(
            "decide",
            f"{who} just talked with {whom}. Revise {who}'s plan for the rest of the hour.",
            RESCHEDULE_TOKENS,
        )
        for who, whom in ((me, partner), (partner, me))
    ]
    return calls


def chat_steps(utterances: int, steps_per_day: int) -> int:
    """Steps a conversation lasts: Generative Agents' ``ceil(chars / 8 / 30)`` minutes."""
    minutes = -(-(utterances * UTTERANCE_CHARS) // 240)
    return max(1, round(minutes * steps_per_day / 1440))
