"""Fixtures of the security tests: the federation partner (a second instance of our server)
and the webhook receiver come from the federation and webhook tests' fixtures."""

from tests.federation.conftest import (  # noqa: F401 - fixtures, registered by import
    make_federation,
    partner,
    partner_postgis_database,
    partner_settings,
    partner_sqlite_path,
)
from tests.lifecycle.conftest import receiver  # noqa: F401 - a fixture, registered by import
