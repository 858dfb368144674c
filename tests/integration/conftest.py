"""Fixtures for integration tests against real databases: a SQLite file and PostgreSQL.

PostgreSQL comes from ``LOOTCAPITAL_TEST_POSTGRES_URL`` (an admin URL; default the local server).
Each test module gets its own freshly created, migrated database, dropped afterwards; each test
starts from empty tables. When the server is unreachable the PostgreSQL tests are skipped, or fail
when ``CI=true`` (CI must not silently lose them).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from adapters.storage.sql.migrations import upgrade_to_head
from adapters.storage.sql.tables import metadata
from adapters.storage.sql.unit_of_work import (
    SqlUnitOfWork,
    make_engine,
    make_session_factory,
    parse_database_url,
)
from tests.integration.paper_harness import SimulatedCrash

POSTGRES_URL_ENV = "LOOTCAPITAL_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
"""Parameters of the backend-parametrized fixtures: every test runs on both databases."""


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty, uniquely named PostgreSQL database; yield its URL; drop it after."""
    admin_url = parse_database_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL))
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"lootcapital_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        admin.dispose()
        shown = admin_url.render_as_string(hide_password=True)
        _unavailable(f"PostgreSQL unreachable at {shown} ({POSTGRES_URL_ENV}): {exc}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def migrated_postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database for this test module, migrated to head."""
    with fresh_postgres_database() as url:
        upgrade_to_head(url)
        yield url


def _delete_all(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of an empty database migrated to head: a new SQLite file, or emptied PostgreSQL."""
    if request.param == "sqlite":
        directory = tmp_path_factory.mktemp("sqlite")
        url = f"sqlite:///{directory / 'var' / 'lootcapital.db'}"
        upgrade_to_head(url)
        return url
    url: str = request.getfixturevalue("migrated_postgres_url")
    _delete_all(url)
    return url


@pytest.fixture(params=BACKENDS)
def unmigrated_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a database with no schema at all (a new SQLite path or a new PostgreSQL db)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'new' / 'lootcapital.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on :func:`database_url`, disposed after the test."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


DEFAULT_RUN_ID = "run-1"
"""The run that :func:`new_uow` opens units of work for unless told otherwise."""


@pytest.fixture
def new_uow(engine: Engine) -> Callable[..., SqlUnitOfWork]:
    """Factory of units of work on :func:`engine`, one per transaction under test:
    ``new_uow()`` for the run ``"run-1"``, ``new_uow("other")`` for another run."""
    factory = make_session_factory(engine)

    def new(run_id: str = DEFAULT_RUN_ID) -> SqlUnitOfWork:
        return SqlUnitOfWork(factory, run_id)

    return new


@pytest.fixture
def quiet_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated crashes end engine threads silently; any other thread error still shows."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, SimulatedCrash):
            previous(args)

    monkeypatch.setattr(threading, "excepthook", hook)
