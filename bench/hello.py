"""The bare reference app: FastAPI answering a small JSON document (no database)."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    """A small JSON document."""
    return {"hello": "world"}
