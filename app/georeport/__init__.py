"""GeoReport v2 as code: formats, the Spark codec and wire models (no DB, no FastAPI)."""
