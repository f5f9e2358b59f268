"""`agentrt serve`: argument parsing and wiring."""

from __future__ import annotations

import argparse
import os

from agentrt.cli_types import (
    fraction,
    nonneg_float,
    port,
    positive_float,
    positive_int,
)
from agentrt.serve.engine_flags import add_engine_flags, build_engine, engine_config
from agentrt.serve.settings import PIN_RULES, ServeSettings


def _cmd_serve(args: argparse.Namespace) -> int:
    from agentrt.serve.server import serve

    settings = ServeSettings(
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("AGENTRT_API_KEY") or None,
        served_model_name=args.served_model_name,
        max_body_bytes=args.max_body_bytes,
        max_prompt_tokens=args.max_prompt_tokens,
        max_pending=args.max_pending,
        grace_seconds=args.grace_seconds,
        log_requests=args.log_requests,
        pin_budget=args.pin_budget,
        pin_rule=args.pin_rule,
        arrival_wait_ms=args.arrival_wait_ms,
    )
    serve(build_engine(engine_config(args)), settings)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="OpenAI-compatible HTTP server on the built-in engine",
        description="Serves /v1/chat/completions, /v1/completions, /v1/models, /health and "
        "/metrics (Prometheus). Binds loopback unless --host says otherwise.",
    )
    add_engine_flags(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="port (8000)")
    p.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` (default: $AGENTRT_API_KEY; none if unset)",
    )
    p.add_argument("--served-model-name", default=None, help="model id clients name")
    p.add_argument(
        "--max-body-bytes", type=positive_int, default=4 << 20, help="body limit (4 MiB)"
    )
    p.add_argument(
        "--max-prompt-tokens", type=positive_int, default=None, help="prompt limit (context)"
    )
    p.add_argument("--max-pending", type=positive_int, default=512, help="requests in flight (512)")
    p.add_argument("--grace-seconds", type=positive_float, default=30.0, help="SIGTERM grace (30)")
    p.add_argument(
        "--pin-budget",
        type=fraction,
        default=0.25,
        help="share of the device KV pool that tool-call pauses may hold pinned (0.25)",
    )
    p.add_argument(
        "--pin-rule",
        choices=PIN_RULES,
        default="cost",
        help="cost: pin for the TTL whose expected reload saving outweighs the pool share "
        "held; pause: pin every pause that fits the budget, for its expected length (cost)",
    )
    p.add_argument(
        "--arrival-wait-ms",
        type=nonneg_float,
        default=5.0,
        help="after a step that finished requests, wait at most this long for as many new "
        "ones before the next step, so a client's next request joins it (5)",
    )
    p.add_argument("--log-requests", action="store_true", help="uvicorn access log")
    p.set_defaults(func=_cmd_serve)
