"""Sim tier: configuring a provisioned node over BLE through an injected fake bleak backend (no radio).

SimNusClient carries the Nordic UART Service over the virtual node's pty UART, so the frames are
answered by the real firmware: config_set applied and saved on its flash, config_get read back.
The failures: no such device, a device without the service, a node the registry does not know,
a node holding another key, a node that never answers, nothing to set.
"""

import os
import time

import pytest

from gateway.registry import Device, Registry
from provisioning.ble import provision_ble
from provisioning.errors import BadInput, BleError, WrongBoard
from provisioning.provision import provision_virtual
from provisioning.sites import SiteBook
from tools.virtual_field.ble_nus import SimNusClient
from tools.virtual_field.node import START
from tools.virtual_field.peer import PtyLink

pytestmark = pytest.mark.sim
ADDR = "C0:FF:EE:00:00:09"


@pytest.fixture(scope="module")
def fnode(tmp_path_factory):
    """A node provisioned over USB, then running (its UART is the BLE bridge's far end)."""
    from provisioning.provision import Request

    work = tmp_path_factory.mktemp("ble")
    reg = str(work / "devices.toml")
    s, board = provision_virtual(str(work / "node"), Request(registry_path=reg, lat=52.1, lon=5.2, name="n9"),
                                 seed=9)  # fmt: skip
    link = PtyLink()
    node = board.node(link.slave_path, until=START + 60 * 86400)
    node.start()
    yield {"reg": reg, "id": s.device_id, "link": link, "node": node, "work": work}
    node.stop()
    link.close()


def _req(fnode, **kw):
    from provisioning.provision import Request

    kw.setdefault("registry_path", fnode["reg"])
    return Request(**kw)


def _backend(fnode, **kw):
    return {"links": {ADDR: fnode["link"]}, **kw}


def test_config_set_over_ble_is_applied_read_back_and_recorded(fnode):
    t0 = time.monotonic()
    s = provision_ble(ADDR, _req(fnode, name="north-9", lat=52.105, lon=5.205, customer="acme", field="north",
                                 overrides={"intervals": {"sample_s": 120}}),
                      backend=SimNusClient, backend_args=_backend(fnode), timeout_s=20)  # fmt: skip
    assert s.verified and s.device_id == fnode["id"] and s.config == "set over BLE"
    assert "0 files copied" in s.copied_text() and s.key == "kept"
    assert time.monotonic() - t0 < 15
    reg = Registry.load(fnode["reg"])
    assert reg.get(fnode["id"]).name == "north-9" and reg.get(fnode["id"]).customer == "acme"
    rec = SiteBook.beside(fnode["reg"]).get(fnode["id"])
    assert rec["lat"] == 52.105 and rec["field"] == "north" and rec["ble_counter"] >= 2
    assert os.stat(fnode["reg"]).st_mode & 0o777 == 0o600


def test_unknown_address(fnode):
    with pytest.raises(BleError) as e:
        provision_ble("C0:FF:EE:99:99:99", _req(fnode, name="x"), backend=SimNusClient,
                      backend_args=_backend(fnode), timeout_s=2)  # fmt: skip
    assert "no BLE device C0:FF:EE:99:99:99" in e.value.message


def test_device_without_the_uart_service_is_the_wrong_board(fnode):
    with pytest.raises(WrongBoard) as e:
        provision_ble(ADDR, _req(fnode, name="x"), backend=SimNusClient, backend_args=_backend(fnode, nus=False))
    assert "no Nordic UART Service" in e.value.message


def test_node_not_in_the_registry_needs_usb_first(fnode, tmp_path):
    empty = str(tmp_path / "empty.toml")
    with pytest.raises(BadInput) as e:
        provision_ble(ADDR, _req(fnode, name="x", registry_path=empty), backend=SimNusClient,
                      backend_args=_backend(fnode), timeout_s=10)  # fmt: skip
    assert "not in the registry" in e.value.message and "--port" in e.value.advice


def test_node_holding_another_key(fnode, tmp_path):
    other = Registry(path=str(tmp_path / "other.toml"))
    other.add(Device(fnode["id"], b"\x11" * 32, "n9"))
    other.save()
    with pytest.raises(BleError) as e:
        provision_ble(ADDR, _req(fnode, name="x", registry_path=other.path), backend=SimNusClient,
                      backend_args=_backend(fnode), timeout_s=10)  # fmt: skip
    assert "do not authenticate" in e.value.message


def test_silent_node_times_out_with_advice(fnode):
    quiet = PtyLink()  # nothing on the other end
    try:
        with pytest.raises(BleError) as e:
            provision_ble(ADDR, _req(fnode, name="x", device_id=fnode["id"]), backend=SimNusClient,
                          backend_args={"links": {ADDR: quiet}}, timeout_s=1.5)  # fmt: skip
    finally:
        quiet.close()
    assert "did not answer" in e.value.message and "RESET" in e.value.advice


def test_nothing_to_set(fnode):
    with pytest.raises(BadInput) as e:
        provision_ble(ADDR, _req(fnode), backend=SimNusClient, backend_args=_backend(fnode))
    assert "nothing to set over BLE" in e.value.message


class _NoAdapter(SimNusClient):
    async def connect(self, pair, **kwargs):
        raise OSError(2, "No such file or directory")  # BlueZ's D-Bus socket is not there


def test_no_bluetooth_on_this_computer(fnode):
    with pytest.raises(BleError) as e:
        provision_ble(ADDR, _req(fnode, name="x"), backend=_NoAdapter, backend_args=_backend(fnode))
    assert "Bluetooth is not available" in e.value.message and "--port" in e.value.advice
