"""Fixtures for the gateway tests: a real Mosquitto broker (plain and TLS) and throw-away certificates.

    def test_x(mosquitto): ...            # mosquitto.port, .url, .stop(), .start()
    def test_y(mosquitto_tls, certs): ... # TLS listener that requires a client certificate from certs' CA
    def test_z(mosquitto_users): ...      # no anonymous clients: user "gw-1", password "right"

A failing test shows the broker's log (captured output of the fixture's teardown).
"""

import pytest

from tools.virtual_field.broker import MOSQUITTO, OPENSSL, Mosquitto, make_certs


def _need_mosquitto():
    if MOSQUITTO is None:
        pytest.skip("the mosquitto binary is not installed (python3 bootstrap.py installs it)")


@pytest.fixture
def certs(tmp_path):
    """make_certs() paths: ca, ca_key, server_cert, server_key, client_cert, client_key."""
    if OPENSSL is None:
        pytest.skip("the openssl CLI is not installed (python3 bootstrap.py installs it)")
    return make_certs(tmp_path / "certs")


def _broker(tmp_path, **kw):
    broker = Mosquitto(tmp_path, **kw)
    yield broker
    broker.close()
    print("mosquitto log %s:\n%s" % (broker.log_path, broker.log()[-3000:]))


@pytest.fixture
def mosquitto(tmp_path):
    _need_mosquitto()
    yield from _broker(tmp_path)


@pytest.fixture
def mosquitto_tls(tmp_path, certs):
    _need_mosquitto()
    yield from _broker(tmp_path, tls=certs, require_certificate=True)


@pytest.fixture
def mosquitto_users(tmp_path):
    _need_mosquitto()
    yield from _broker(tmp_path, users={"gw-1": "right"})
