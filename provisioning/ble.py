"""Configure a provisioned node over BLE: its own frames through a Nordic UART Service (bleak).

    summary = provision_ble("C0:FF:EE:00:00:01", req)                  # the platform's bleak backend
    summary = provision_ble(addr, req, backend=SimNusClient, backend_args={"links": {addr: link}})

BLE carries the node's link frames (COBS, HMAC-tagged) both ways: written to the NUS RX
characteristic, notified on TX. Over it provisioning can do what the link protocol allows: a
``config_set`` (name, site, intervals, calibration, ...) authenticated with the node's key from
the registry, and a ``config_get`` that reads the result back. Identity and firmware need USB:
the node refuses device_id and key in config_set, so a node not in the registry is a BadInput.
The node answers when it listens (after its reports); requests are repeated until it does or
``timeout_s`` runs out. A time_sync the node asks for is answered (the installer's clock).

Our frame counters continue from the site record's ``ble_counter``: small numbers, so the
gateway's (higher) counters stay acceptable to the node's replay guard afterwards.
"""

import asyncio
import time

from bleak import BleakClient
from bleak.exc import BleakBluetoothNotAvailableError, BleakDeviceNotFoundError, BleakError

from gateway.cbor_codec import install as _use_cbor2
from provisioning import configure
from provisioning.errors import BadInput, BleError, VerifyFailed, WrongBoard
from provisioning.provision import check_inside
from provisioning.report import Summary
from provisioning.sites import SiteBook
from shared_protocol import AuthError, Deframer, ProtocolError, ReplayGuard, decode_frame, encode_frame
from shared_protocol.frame import parse_header, unframe

NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"
RESEND_S = 3.0


def ble_values(req):
    """The dotted config keys to set over BLE from the request (never device_id or key)."""
    out = {}
    if req.name is not None:
        out["name"] = req.name
    for k, v in (("site.lat", req.lat), ("site.lon", req.lon), ("site.alt_m", req.alt_m)):
        if v is not None:
            out[k] = float(v)
    for sec, values in (req.overrides or {}).items():
        if sec == "name":
            out["name"] = values
            continue
        for k, v in values.items():
            out["%s.%s" % (sec, k)] = v
    if not out:
        raise BadInput(
            "nothing to set over BLE: expected --name, --lat/--lon or --config FILE",
            "identity, key and firmware are written over USB (--port)",
        )
    return out


def provision_ble(address, req, backend=None, backend_args=None, timeout_s=20.0):
    """Set the node's configuration over BLE, read it back, update registry and site record; a Summary."""
    t0 = time.monotonic()
    req.check()
    values = ble_values(req)
    reg = configure.load_registry(req.registry_path)
    book = SiteBook.beside(req.registry_path)
    s = Summary(target="ble %s" % address, registry_path=req.registry_path, config="set over BLE")
    _use_cbor2()
    dev_id, applied, got, counter = asyncio.run(
        _session(address, req, reg, book, values, backend, backend_args, timeout_s)
    )
    for k, v in values.items():
        have = got.get(k)
        if not (have == v or isinstance(v, float) and isinstance(have, float) and abs(have - v) < 1e-6):
            raise VerifyFailed("the node reads back %s = %r, expected %r" % (k, have, v), "run again")
    known = reg.get(dev_id)
    old = book.get(dev_id) or {}
    lat, lon = got.get("site.lat"), got.get("site.lon")
    boundary = req.boundary if req.boundary is not None else old.get("boundary")
    if lat is not None:
        check_inside(lat, lon, boundary)
    customer = req.customer or old.get("customer") or known.customer
    s.registry = configure.register(reg, configure.device_record(dev_id, known.key, got.get("name"), customer))
    rec = dict(old, name=got.get("name") or None, customer=customer, field=req.field or old.get("field"), lat=lat,
               lon=lon, alt_m=got.get("site.alt_m"), boundary=[list(v) for v in boundary] if boundary else None,
               ble_counter=counter)  # fmt: skip
    rec["verified_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    book.put(dev_id, {k: v for k, v in rec.items() if v is not None})
    book.save()
    s.device_id, s.name, s.verified = dev_id, got.get("name") or None, True
    s.hw, s.uid, s.fw_version = old.get("hw", ""), old.get("uid"), old.get("fw_version", "")
    s.site = {k: rec.get(k) for k in ("customer", "field", "lat", "lon", "alt_m", "boundary")}
    s.notes.append("BLE sets configuration only: %d keys applied; firmware and key need USB" % len(applied))
    s.elapsed_s = round(time.monotonic() - t0, 2)
    return s


async def _session(address, req, reg, book, values, backend, backend_args, timeout_s):
    client = BleakClient(address, backend=backend, timeout=timeout_s, **(backend_args or {}))
    try:
        await client.connect()
    except BleakDeviceNotFoundError:
        raise BleError("no BLE device %s in range" % address,
                       "wake the node (it advertises after a reset: press RESET), stand within a few metres, "
                       "check the address") from None  # fmt: skip
    except (OSError, BleakBluetoothNotAvailableError) as e:
        raise BleError(
            "Bluetooth is not available on this computer (%s)" % e,
            "switch Bluetooth on (BlueZ running, `bluetoothctl power on`), or connect the node by USB (--port)",
        ) from None
    except (TimeoutError, BleakError) as e:
        raise BleError("cannot connect to %s over BLE: %s" % (address, e), "move closer and run again") from None
    try:
        if client.services.get_service(NUS_SERVICE) is None:
            raise WrongBoard(
                "%s offers no Nordic UART Service (%s): not a Fieldline node" % (address, NUS_SERVICE),
                "check the address of the node",
            )
        return await _NodeTalk(client, req, reg, book, values, timeout_s).run()
    finally:
        try:
            await client.disconnect()
        except BleakError:
            pass


class _NodeTalk:
    """The exchange: learn the node's id, send config_set + config_get, collect both answers."""

    def __init__(self, client, req, reg, book, values, timeout_s):
        self.client, self.req, self.reg, self.book = client, req, reg, book
        self.values, self.timeout_s = values, timeout_s
        self.frames = asyncio.Queue()
        self.deframer = Deframer()
        self.guard = ReplayGuard()

    def _on_tx(self, _char, data):
        for wire in self.deframer.feed(bytes(data)):
            self.frames.put_nowait(wire)

    async def _write(self, wire):
        step = max(20, self.client.mtu_size - 3)
        for i in range(0, len(wire), step):
            await self.client.write_gatt_char(NUS_RX, wire[i : i + step], response=True)

    async def run(self):
        await self.client.start_notify(NUS_TX, self._on_tx)
        end = time.monotonic() + self.timeout_s
        dev_id = self.req.device_id
        while dev_id is None:  # the node's id is in the header of whatever it sends
            wire = await self._next(end, "a frame from the node (to learn its device id)")
            try:
                dev_id = parse_header(unframe(wire))[3]
            except ProtocolError:
                continue
        known = self.reg.get(dev_id)
        if known is None:
            raise BadInput("node %d (0x%08X) is not in the registry %s: expected a node provisioned over USB"
                           % (dev_id, dev_id, self.reg.path), "provision it with --port first")  # fmt: skip
        keyring = {dev_id: known.key}
        self.counter = counter = max((self.book.get(dev_id) or {}).get("ble_counter", 0), 0)
        set_reply = get_reply = None
        next_send = 0.0
        while set_reply is None or get_reply is None:
            if time.monotonic() >= next_send:
                counter += 2
                await self._write(encode_frame({"type": "config_set", "device_id": dev_id, "counter": counter - 1,
                                                "values": self.values}, known.key))  # fmt: skip
                await self._write(encode_frame({"type": "config_get", "device_id": dev_id, "counter": counter},
                                               known.key))  # fmt: skip
                self.counter = counter
                next_send = time.monotonic() + RESEND_S
            wire = await self._next(min(end, next_send), None)
            if wire is None:
                if time.monotonic() >= end:
                    raise BleError("node %d did not answer its configuration request over BLE within %.0f s"
                                   % (dev_id, self.timeout_s),
                                   "the node answers after its reports: press RESET on it (it reports at boot) "
                                   "and run again; a node that the gateway talked to since its last power-on may "
                                   "ignore these frames (replay guard): power-cycle it")  # fmt: skip
                continue
            try:
                m = decode_frame(wire, keyring, self.guard)
            except AuthError as e:
                if "replay" not in type(e).__name__.lower() and _device(wire) == dev_id:
                    raise BleError("frames from node %d do not authenticate with the key in %s (%s)"
                                   % (dev_id, self.reg.path, e),
                                   "the node holds another key (another registry?): provision it over USB with "
                                   "--port, or with --new-key") from None  # fmt: skip
                continue
            except ProtocolError:
                continue
            if m["type"] == "time_sync" and m.get("t2_ms") is None:
                now = int(time.time() * 1000)
                counter += 1
                await self._write(
                    encode_frame(
                        {
                            "type": "time_sync",
                            "device_id": dev_id,
                            "counter": counter,
                            "t1_ms": m["t1_ms"],
                            "t2_ms": now,
                            "t3_ms": now,
                        },
                        known.key,
                    )
                )
                self.counter = counter
            elif m["type"] == "config":
                if "device_id" in m["values"]:
                    get_reply = m
                else:
                    set_reply = m
                if m.get("errors"):
                    errs = "; ".join("%s: %s" % kv for kv in sorted(m["errors"].items()))
                    raise BadInput(
                        "the node refuses the configuration: %s" % errs,
                        "correct the option or --config value named, then run again",
                    )
        return dev_id, set_reply["values"], get_reply["values"], self.counter

    async def _next(self, until, what):
        try:
            return await asyncio.wait_for(self.frames.get(), max(0.01, until - time.monotonic()))
        except TimeoutError:
            if what is None:
                return None
            raise BleError(
                "no frame from the node over BLE within %.0f s (waiting for %s)" % (self.timeout_s, what),
                "press RESET on the node (it says hello at boot) or pass --device-id",
            ) from None


def _device(wire):
    try:
        return parse_header(unframe(wire))[3]
    except ProtocolError:
        return None
