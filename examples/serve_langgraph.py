"""A LangGraph graph of two agents and a tool, on `agentrt serve` through langchain-openai.

    agentrt serve &                      # SmolLM2-135M on 127.0.0.1:8000
    python examples/serve_langgraph.py   # researcher -> get_weather -> writer

The researcher must call the tool (`tool_choice="required"`: grammar-constrained, so the
call parses even on a 135M model); the writer turns the tool's result into the answer.
"""

from __future__ import annotations

import argparse
from typing import Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode


@tool
def get_weather(city: Literal["Paris", "Rome", "Oslo"]) -> str:
    """Today's weather in a city."""
    return {"Paris": "rain, 12 C", "Rome": "sun, 24 C", "Oslo": "snow, -3 C"}[city]


def build_graph(base_url: str, model: str, api_key: str = "none", max_tokens: int = 48):
    llm = ChatOpenAI(
        base_url=base_url, api_key=api_key, model=model, temperature=0, max_tokens=max_tokens
    )
    researcher = llm.bind_tools([get_weather], tool_choice="required")
    writer = ChatOpenAI(
        base_url=base_url,
        api_key=api_key,
        model=model,
        temperature=0,
        max_tokens=max_tokens,
        extra_body={"min_tokens": 1},
    )

    def research(state: MessagesState) -> dict:
        return {"messages": [researcher.invoke(state["messages"])]}

    def write(state: MessagesState) -> dict:
        brief = SystemMessage("Answer the user in one sentence using the tool result.")
        return {"messages": [writer.invoke([brief, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("researcher", research)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_node("writer", write)
    graph.add_edge(START, "researcher")
    graph.add_edge("researcher", "tools")
    graph.add_edge("tools", "writer")
    graph.add_edge("writer", END)
    return graph.compile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--api-key", default="none")
    args = parser.parse_args()
    app = build_graph(args.base_url, args.model, args.api_key)
    state = app.invoke({"messages": [HumanMessage("What is the weather in Rome?")]})
    for message in state["messages"]:
        message.pretty_print()


if __name__ == "__main__":
    main()
