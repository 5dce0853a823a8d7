"""The OpenAI-compatible API: an ASGI app that streams (see app.py)."""
