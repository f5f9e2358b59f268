"""`agentrt serve`: an OpenAI-compatible HTTP server over the built-in engine.

app = build_app(engine, ServeSettings(api_key="..."))   # a Starlette (ASGI) app
uvicorn.run(app)                                       # or `agentrt serve`

The names are imported lazily, so that the command line can parse its flags without
loading the web stack and the engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"build_app": "agentrt.serve.app", "ServeSettings": "agentrt.serve.settings"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agentrt.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
