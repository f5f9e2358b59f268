"""`agentrt demo`: town agents sharing a long system prompt answer questions in one batch.

Every agent's prompt starts with the same town handbook (cached once, reused by all),
then its own persona (reused by its own calls), then the question.
"""

from __future__ import annotations

import time

from agentrt.bench.report import format_table
from agentrt.engine.llm import LLM
from agentrt.engine.sampling_params import SamplingParams

HANDBOOK = """You live in Willowbrook, a small river town of about two thousand people.
The town square has a bakery, a library, a clinic, a school and a weekly farmers' market
that opens every Saturday at seven in the morning and closes at one in the afternoon.
The river Wend runs east of the square; the old stone bridge is closed to cars but open
to walkers and bicycles. The town council meets on the first Monday of each month in the
library's reading room, and anyone may speak for three minutes on any topic.
Rules every resident follows: be kind and brief; answer in one or two sentences; when
you do not know something, say so plainly; never invent prices, dates or names that are
not in this handbook. The bakery opens at six and sells bread, rolls and apple pie. The
clinic is open on weekdays from eight to five, and Dr. Amara Osei runs it with two nurses.
The library lends books for three weeks and has a children's corner with a puppet theatre.
The school teaches children from five to eleven years old, and its headteacher is
Mr. Tomas Lind. The farmers' market sells vegetables, honey, eggs, cheese and flowers.
Winter brings snow in January, and the council clears the square before the market opens.
Spring brings the Blossom Fair on the second Saturday of April, with music on the bridge."""

AGENTS = {
    "mayor": "You are Mayor Helen Brandt. You care about the council, roads and the fair.",
    "baker": "You are Rosa, the town baker. You talk about bread, pies and early mornings.",
    "doctor": "You are Dr. Amara Osei of the town clinic. You give calm, practical advice.",
    "teacher": "You are Mr. Tomas Lind, headteacher of the school. You love explaining.",
    "librarian": "You are Ines, the librarian. You recommend books and know the town's history.",
    "farmer": "You are Jonah, a farmer who sells honey and eggs at the Saturday market.",
}

QUESTIONS = [
    "A visitor asks you: what should I do in Willowbrook on a Saturday morning?",
    "A neighbour asks you: what is the best thing about your job?",
]


def build_requests(llm: LLM) -> list[tuple[str, str, list[int]]]:
    requests = []
    for agent, persona in AGENTS.items():
        for question in QUESTIONS:
            messages = [
                {"role": "system", "content": f"{HANDBOOK}\n\n{persona}"},
                {"role": "user", "content": question},
            ]
            requests.append((agent, question, llm.chat_prompt(messages)))
    return requests


def run_demo(
    model: str | None = None,
    device: str = "cpu",
    max_tokens: int = 48,
    show_answers: bool = True,
) -> dict:
    start = time.perf_counter()
    llm = LLM(model, device=device)
    load_s = time.perf_counter() - start
    requests = build_requests(llm)
    params = SamplingParams(max_tokens=max_tokens)
    start = time.perf_counter()
    outputs = llm.generate([r[2] for r in requests], params, use_tqdm=True)
    wall = time.perf_counter() - start
    if show_answers:
        for (agent, question, _), out in zip(requests, outputs, strict=True):
            print(f"[{agent}] {question}\n    {out.text.strip()}\n")
    stats = llm.engine.stats
    kv = llm.engine.kv
    generated = sum(len(o.token_ids) for o in outputs)
    result = {
        "model": llm.engine.config.model or "SmolLM2-135M-Instruct (default)",
        "device": device,
        "requests": len(outputs),
        "load_s": load_s,
        "wall_s": wall,
        "prompt_tokens": sum(len(r[2]) for r in requests),
        "prefill_tokens_computed": stats.prefill_tokens_computed,
        "prefill_tokens_reused": stats.prefill_tokens_reused,
        "prefix_hit_rate": stats.prefix_hit_rate,
        "generated_tokens": generated,
        "output_tok_s": generated / wall,
        "steps": stats.steps,
        "mean_batch_size": stats.as_dict()["mean_batch_size"],
        "preemptions": stats.preemptions,
        "kv_pages_total": kv.num_pages,
        "kv_pages_cached": kv.tree.cached_pages,
        "page_size": kv.page_size,
    }
    rows = [
        ("Requests", result["requests"]),
        ("Wall time (s)", result["wall_s"]),
        ("Prompt tokens", result["prompt_tokens"]),
        ("Prefill tokens computed", result["prefill_tokens_computed"]),
        ("Prefill tokens reused (prefix cache)", result["prefill_tokens_reused"]),
        ("Prefix hit rate", result["prefix_hit_rate"]),
        ("Generated tokens", result["generated_tokens"]),
        ("Output throughput (tok/s)", result["output_tok_s"]),
        ("Engine steps", result["steps"]),
        ("Mean batch size", result["mean_batch_size"]),
        ("KV pages cached / total", f"{result['kv_pages_cached']} / {result['kv_pages_total']}"),
    ]
    print(format_table("agentrt demo", ["metric", "value"], rows))
    return result
