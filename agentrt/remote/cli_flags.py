"""The flags every command that can run on a remote server takes (`--backend openai`)."""

from __future__ import annotations

import argparse

from agentrt.remote.server_kind import KINDS
from agentrt.remote.settings import RemoteSettings


def add_remote_flags(p: argparse.ArgumentParser, served_model: bool = True) -> None:
    """`--base-url`, `--api-key-env`, `--server-kind`, `--tokenizer` and (unless the
    command's `--model` names the served model) `--served-model`."""
    p.add_argument("--base-url", help="openai: the server, e.g. http://127.0.0.1:8000")
    p.add_argument(
        "--api-key-env", metavar="VAR", help="openai: environment variable with the API key"
    )
    p.add_argument(
        "--server-kind",
        default="auto",
        choices=KINDS,
        help="openai: which hints to send (auto: detected from /v1/models)",
    )
    p.add_argument(
        "--tokenizer",
        help="openai: model directory whose tokenizer matches the server's model "
        "(the embedded SmolLM2's)",
    )
    if served_model:
        p.add_argument("--served-model", help="openai: the model to ask for (the server's first)")


def remote_settings(args: argparse.Namespace, command: str, model: str | None) -> RemoteSettings:
    """The server the parsed `args` name; exits with a one-line error without one."""
    if not args.base_url:
        raise SystemExit(f"agentrt {command}: error: --backend openai needs --base-url")
    return RemoteSettings(
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        server_kind=args.server_kind,
        model=model,
    )
