"""The OpenAI Agents SDK on `agentrt serve`, through its chat-completions model.

    agentrt serve &
    python examples/serve_openai_agents.py

The agent's first turn must call its tool (`tool_choice="required"`, grammar-constrained);
the SDK then resets the choice to `auto` and the model writes the final answer.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Literal

from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI


@function_tool
def get_weather(city: Literal["Paris", "Rome", "Oslo"]) -> str:
    """Today's weather in a city."""
    return {"Paris": "rain, 12 C", "Rome": "sun, 24 C", "Oslo": "snow, -3 C"}[city]


def build_agent(base_url: str, model: str, api_key: str = "none", max_tokens: int = 48) -> Agent:
    set_tracing_disabled(True)  # traces would go to OpenAI's servers
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)
    return Agent(
        name="weather",
        instructions="You answer weather questions. Call get_weather, then answer briefly.",
        model=OpenAIChatCompletionsModel(model=model, openai_client=client),
        tools=[get_weather],
        model_settings=ModelSettings(
            tool_choice="required",
            temperature=0,
            max_tokens=max_tokens,
            extra_body={"min_tokens": 1},
        ),
    )


async def ask(agent: Agent, question: str):
    return await Runner.run(agent, question, max_turns=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--api-key", default="none")
    args = parser.parse_args()
    agent = build_agent(args.base_url, args.model, args.api_key)
    result = asyncio.run(ask(agent, "What is the weather in Oslo?"))
    for item in result.new_items:
        print(type(item).__name__, getattr(item, "raw_item", ""))
    print("final:", result.final_output)


if __name__ == "__main__":
    main()
