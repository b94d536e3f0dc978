"""Typed, backend-free values that the domain and the store exchange (no database code)."""
