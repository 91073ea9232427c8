"""A local OpenAI-compatible HTTP API on an asyncio loop (aiohttp); no Qt, no torch at import.

protocol.py checks request bodies, jobs.py runs a request in the model's thread,
responses.py writes OpenAI's response and chunk shapes, app.py is the aiohttp server.
"""
