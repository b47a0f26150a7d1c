"""Fixtures for the upstream tests: stores on SQLite and on a real PostgreSQL server, a real Mosquitto.

    def test_x(store_url): ...        # runs twice: a fresh sqlite:/// file and a fresh PostgreSQL database
    def test_y(pg_server): ...        # the session's PostgreSQL server (tools/virtual_field/postgres.py)
    def test_z(mosquitto): ...        # a Mosquitto broker on 127.0.0.1, a free port

The PostgreSQL server is started once per session: initdb into a fresh temp directory, pg_ctl start on
127.0.0.1 with a free port and the unix socket in that directory, stopped and removed at the end.
initdb refuses root, so as root the server runs as the system ``postgres`` account (or a throwaway
user that is deleted afterwards) through runuser; see tools/virtual_field/postgres.py. Tests skip,
naming what is missing, only when the PostgreSQL programs are not installed.
"""

import itertools

import pytest

from tools.virtual_field.broker import MOSQUITTO, Mosquitto
from tools.virtual_field.postgres import PostgresServer, missing_binaries

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server():
    missing = missing_binaries()
    if missing:
        pytest.skip("PostgreSQL programs not installed (%s): apt-get install postgresql" % ", ".join(missing))
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "upstream.db")
    server = request.getfixturevalue("pg_server")
    return server.create_database("t%d" % next(_db_numbers))


@pytest.fixture
def mosquitto(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("the mosquitto binary is not installed (python3 bootstrap.py installs it)")
    broker = Mosquitto(tmp_path)
    yield broker
    broker.close()
    print("mosquitto log %s:\n%s" % (broker.log_path, broker.log()[-3000:]))
