"""The node source inside a running gateway, on real pseudo-terminals: the test plays the node.

A port that vanishes and comes back (a USB adapter unplugged: the configured path is a symlink,
as udev's /dev/serial/by-id/... are), a node rebooting in the middle of a frame, and a port
chattering garbage next to a healthy one.
"""

import asyncio
import os
import pty
import random
import select
import tty

import pytest

from gateway.config import parse_config
from gateway.engine import Gateway
from gateway.registry import Device, Registry
from gateway.sources.node import FastDeframer
from gateway.stream import load_batch
from shared_protocol import Deframer, decode_frame, encode_frame

pytestmark = pytest.mark.sim

KEY = bytes(range(1, 33))
DEV_A, DEV_B = 0x0A000001, 0x0B000002


class FakeNode:
    """The node end of a pty pair; the gateway opens ``link`` (a symlink to the slave)."""

    def __init__(self, link, device):
        self.link = link
        self.device = device
        self.counter = 1
        self.deframer = Deframer()
        self.plug()

    def plug(self):
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(self.master, False)  # the test runs in the gateway's event loop: never block it
        self.slave = slave
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(os.ttyname(slave), self.link)

    def unplug(self):
        os.unlink(self.link)
        os.close(self.slave)
        os.close(self.master)

    def frame(self, **fields):
        msg = {
            "type": "hello",
            "device_id": self.device,
            "counter": self.counter,
            "fw_version": "1.0.0",
            "hw": "test",
            "provisioned": True,
            "ack_req": True,
        }
        msg.update(fields)
        self.counter += 1
        return encode_frame(msg, KEY)

    def write(self, data):
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                select.select([], [self.master], [], 1.0)

    def acks(self):
        out = []
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                break
            for w in self.deframer.feed(chunk):
                m = decode_frame(w, {self.device: KEY})
                if m["type"] == "ack":
                    out.extend(m["counters"])
        return out


def _gateway(tmp_path, ports):
    reg = Registry(path=str(tmp_path / "devices.toml"))
    reg.add(Device(DEV_A, KEY, name="a"))
    reg.add(Device(DEV_B, KEY, name="b"))
    reg.save()
    text = '[gateway]\nid = "gw-t"\ndata_dir = "data"\n[status]\nport = 0\nhealth_every_s = 10\n'
    for i, p in enumerate(ports):
        text += '[[sources]]\nkind = "node"\nname = "s%d"\nport = "%s"\nreopen_s = 0.1\n' % (i, p)
    text += '[[uplinks]]\nkind = "file"\npath = "stream.jsonl"\n'
    return Gateway(parse_config(text, base_dir=str(tmp_path)))


async def _until(cond, timeout_s, what):
    for _ in range(int(timeout_s / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _run(gw, scenario):
    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        try:
            await scenario()
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    asyncio.run(main())


def test_unplugged_port_is_reopened_and_frames_flow_again(tmp_path):
    node = FakeNode(str(tmp_path / "ttyNODE"), DEV_A)
    gw = _gateway(tmp_path, [node.link])
    src = gw.sources[0]
    acked = []

    async def scenario():
        await _until(lambda: src.connected, 5, "the port to open")
        f = node.frame()
        node.write(f)
        await _until(lambda: acked.extend(node.acks()) or 1 in acked, 5, "the first ack")
        node.unplug()
        await _until(lambda: not src.connected, 5, "the gateway to notice the unplug")
        await asyncio.sleep(0.3)  # a few failed reopen attempts
        node.plug()
        await _until(lambda: src.connected, 5, "the port to be reopened")
        node.write(node.frame())
        await _until(lambda: acked.extend(node.acks()) or 2 in acked, 5, "the ack after replug")

    _run(gw, scenario)
    assert src.opens >= 2
    assert acked.count(1) == 1 and acked.count(2) == 1


def test_node_rebooting_mid_frame_loses_only_the_torn_frame(tmp_path):
    node = FakeNode(str(tmp_path / "ttyNODE"), DEV_A)
    gw = _gateway(tmp_path, [node.link])
    acked = []

    async def scenario():
        await _until(lambda: gw.sources[0].connected, 5, "the port to open")
        torn = node.frame()
        node.write(torn[: len(torn) // 2])  # power gone mid-frame; after the reboot a whole frame
        good = node.frame(reset_cause="power_on")
        node.write(good)
        node.write(node.frame())
        await _until(lambda: acked.extend(node.acks()) or 3 in acked, 5, "acks after the reboot")

    _run(gw, scenario)
    assert 1 not in acked  # the torn frame (glued to the next one) is not taken for data
    assert 3 in acked
    assert sum(gw.rejected.values()) == 1, gw.rejected  # the glued remains: one bad frame, counted


def test_a_chattering_port_does_not_stall_a_healthy_one(tmp_path):
    noisy = FakeNode(str(tmp_path / "ttyNOISY"), DEV_B)
    node = FakeNode(str(tmp_path / "ttyNODE"), DEV_A)
    gw = _gateway(tmp_path, [noisy.link, node.link])
    rnd = random.Random(5)
    garbage = bytes(rnd.randrange(1, 256) for _ in range(4000)) + b"\x00"
    acked = []
    flooded = [0]

    async def scenario():
        await _until(lambda: all(s.connected for s in gw.sources), 5, "the ports to open")
        for _i in range(40):  # the noisy port never stops while the node sends 40 frames
            for _ in range(8):
                try:
                    flooded[0] += os.write(noisy.master, garbage)
                except BlockingIOError:
                    pass  # the pty is full: the gateway reads it no faster than the other port
            node.write(node.frame())
            await asyncio.sleep(0.01)
            acked.extend(node.acks())
        await _until(lambda: acked.extend(node.acks()) or len(set(acked)) == 40, 10, "all 40 acks")
        await _until(lambda: gw.store.depth()[0] == 0, 10, "the outbox to drain into the file")

    _run(gw, scenario)
    assert len(set(acked)) == 40
    assert gw.sources[0].rx_bytes > 100000 and flooded[0] > 100000
    assert gw.rejected, "the garbage was counted"
    lines = (tmp_path / "stream.jsonl").read_bytes().splitlines()
    hellos = [r for line in lines for r in load_batch(line)["records"] if r["kind"] == "node_hello"]
    assert len(hellos) == 40


def test_fast_deframer_matches_the_reference_deframer():
    rnd = random.Random(11)
    for _ in range(300):
        data = bytes(
            rnd.choice([0, 1, 255]) if rnd.random() < 0.3 else rnd.randrange(256) for _ in range(rnd.randrange(0, 3000))
        )
        a, b = Deframer(max_wire=100), FastDeframer(max_wire=100)
        fa, fb = [], []
        i = 0
        while i < len(data):
            n = rnd.randrange(1, 300)
            fa += a.feed(data[i : i + n])
            fb += b.feed(data[i : i + n])
            i += n
        assert fa == fb
        assert a.oversized == b.oversized


def test_a_full_store_raises_an_alert_and_refuses_without_dropping(tmp_path):
    from gateway.sources.base import Intake
    from tools.virtual_field.broker import free_port

    text = (
        '[gateway]\nid = "gw-full"\ndata_dir = "data"\n[outbox]\nmax_mb = 1\nalert_fraction = 0.5\n'
        "[status]\nport = 0\nhealth_every_s = 3600\n"
        '[[uplinks]]\nkind = "mqtt"\nhost = "127.0.0.1"\nport = %d\ntimeout_s = 0.5\n' % free_port()
    )
    gw = Gateway(parse_config(text, base_dir=str(tmp_path)))
    outcomes = []

    async def scenario():
        for i in range(400):  # ~2 MB of records into a 1 MB store whose upstream is down
            rec = {"kind": "node_log", "key": "k%d" % i, "source": "node-1", "text": "x" * 4000}
            gw.ctx.submit(Intake("node-1", records=[(None, None, rec)], done=outcomes.append))
            await asyncio.sleep(0)
        await _until(lambda: len(outcomes) == 400, 20, "every intake answered")
        await _until(lambda: gw.alert_sent, 10, "the alert (fill %.2f)" % gw.store.fill())

    _run(gw, scenario)
    stored, refused = outcomes.count(True), outcomes.count(False)
    assert stored > 50 and refused > 50, (stored, refused)  # refused: the source does not ack, nothing lost
    assert gw.store.refusals > 0
    # everything stored is still in the outbox, the alert among it, waiting for the upstream
    from gateway.store import Store

    st = Store(str(tmp_path / "data" / "gateway.db"), max_bytes=1 << 20)
    docs = [load_batch(b.payload) for b in st.pending(0, limit=10000)]
    st.close()
    recs = [r for d in docs for r in d["records"]]
    assert sum(1 for r in recs if r["kind"] == "node_log") == stored
    alerts = [r for r in recs if r["kind"] == "gateway_alert"]
    assert alerts and alerts[0]["alert"] == "store_near_full" and "fix" in alerts[0]
