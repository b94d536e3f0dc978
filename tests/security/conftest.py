"""Fixtures of the security tests: the federation partner (a second instance of our server)
comes from the federation tests' fixtures."""

from tests.federation.conftest import (  # noqa: F401 - fixtures, registered by import
    make_federation,
    partner,
    partner_postgis_database,
    partner_settings,
    partner_sqlite_path,
)
