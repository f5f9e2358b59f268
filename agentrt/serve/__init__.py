"""`agentrt serve`: an OpenAI-compatible HTTP server over the built-in engine.

app = build_app(engine, ServeSettings(api_key="..."))   # a FastAPI app
uvicorn.run(app)                                       # or `agentrt serve`
"""

from agentrt.serve.app import build_app
from agentrt.serve.settings import ServeSettings

__all__ = ["ServeSettings", "build_app"]
