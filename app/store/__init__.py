"""The store: every SQL statement and every dialect branch of the server (with ``app.geo``).

``engine`` makes engines and transactions, ``types`` the dialect-dependent column types,
``tables`` the SQLModel tables, ``migrations`` their Alembic history.
"""
