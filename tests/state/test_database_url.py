"""The DSN env var selects Postgres through asyncpg; bad DSNs fail without leaking them."""

from __future__ import annotations

import pytest

from homesec.errors import ConfigError
from homesec.models.config import StateStoreConfig
from homesec.state.store import database_url

DSN_ENV = "HOMESEC_TEST_URL_DSN"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_postgres_dsn_is_rewritten_for_asyncpg(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a libpq-style DSN with any accepted scheme and an sslmode
    monkeypatch.setenv(DSN_ENV, f"{scheme}://homesec:pw@db.lan:6543/homesec?sslmode=require")

    # When the database URL is resolved
    url = database_url(StateStoreConfig(dsn_env=DSN_ENV))

    # Then it targets asyncpg with everything else kept and sslmode spelled as asyncpg wants
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port) == ("homesec", "pw", "db.lan", 6543)
    assert url.database == "homesec"
    assert dict(url.query) == {"ssl": "require"}


@pytest.mark.parametrize(
    "dsn", ["mysql://root:hunter2@db/homesec", "host=db password=hunter2 dbname=homesec"]
)
def test_unusable_dsn_fails_naming_the_variable_not_the_secret(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a DSN that is not a Postgres URL
    monkeypatch.setenv(DSN_ENV, dsn)

    # When the database URL is resolved
    with pytest.raises(ConfigError) as raised:
        database_url(StateStoreConfig(dsn_env=DSN_ENV))

    # Then the error names the env var and never shows the password
    assert DSN_ENV in str(raised.value)
    assert "hunter2" not in str(raised.value)
    assert raised.value.__cause__ is None
