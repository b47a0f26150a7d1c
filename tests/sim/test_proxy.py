"""Sim tier: FrameProxy between two pyserial ports on real ptys.

Clean relay both ways, every fault kind's visible effect and its rate, seeded repeatability,
either side closing and reopening its path, pause/resume, idle flushes, a side that never reads.
"""

import random
import time

import pytest
import serial

from tools.virtual_field.proxy import FAULTS, FrameProxy, _corrupt

pytestmark = pytest.mark.sim
N_FRAMES = 500


@pytest.fixture
def opened():
    """Factory for proxies and ports; stops (joins) every proxy and closes every port afterwards."""
    made = []

    def open_(thing=None, **kw):
        if isinstance(thing, str):
            made.append(serial.Serial(thing, timeout=0.05, write_timeout=5))
        else:
            made.append(FrameProxy(**kw).start())
        return made[-1]

    yield open_
    errors = []
    for thing in reversed(made):
        try:
            thing.close()
        except Exception as e:  # a relay thread that died: fail, after closing the rest
            errors.append(e)
    assert not errors, errors


def _frames(rng, n, min_len=4, max_len=40):
    """``n`` distinct random frames: bytes without 0x00, then the 0x00 delimiter."""
    frames = []
    seen = set()
    while len(frames) < n:
        f = bytes(rng.randint(1, 255) for _ in range(rng.randint(min_len, max_len))) + b"\x00"
        if f not in seen:
            seen.add(f)
            frames.append(f)
    return frames


def _collect(port, done, timeout_s=5.0):
    """Frames (each with its 0x00) read from ``port`` until ``done(frames)`` holds or the timeout."""
    deadline = time.monotonic() + timeout_s
    buf = bytearray()
    frames = []
    while not done(frames) and time.monotonic() < deadline:
        buf += port.read(port.in_waiting or 1)
        while (end := buf.find(b"\x00")) >= 0:
            frames.append(bytes(buf[: end + 1]))
            del buf[: end + 1]
    return frames


def _count(n):
    return lambda frames: len(frames) >= n


def _quiet(port, wait_s):
    """Whatever arrives on ``port`` within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    got = bytearray()
    while time.monotonic() < deadline:
        got += port.read(port.in_waiting or 1)
    return bytes(got)


def _wait(predicate, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.mark.parametrize("directions", [("up", "down"), ()], ids=["framed", "pass-through"])
def test_without_faults_both_directions_arrive_byte_exact_in_order(opened, directions):
    proxy = opened(directions=directions)
    node, gateway = opened(proxy.node_path), opened(proxy.gateway_path)
    up, down = _frames(random.Random(1), N_FRAMES), _frames(random.Random(2), N_FRAMES)
    node.write(b"".join(up))
    gateway.write(b"".join(down))
    got_up = _collect(gateway, _count(N_FRAMES))
    got_down = _collect(node, _count(N_FRAMES))
    assert b"".join(got_up) == b"".join(up), "gateway received %d of %d frames" % (len(got_up), N_FRAMES)
    assert b"".join(got_down) == b"".join(down), "node received %d of %d frames" % (len(got_down), N_FRAMES)
    assert proxy.stats["frames_up"] == proxy.stats["frames_down"] == N_FRAMES
    assert all(proxy.stats[k] == 0 for k in FAULTS)


def _run_faulty(opened, sent, seed, rate=0.2):
    """Send ``sent`` up through a faulty proxy; (received frames, stats, fault events)."""
    proxy = opened(seed=seed, fault_rate=rate)
    node, gateway = opened(proxy.node_path), opened(proxy.gateway_path)
    node.write(b"".join(sent))
    s = proxy.stats

    def done(frames):  # every frame read by the proxy, and all its output (held ones included) here
        return s["frames_up"] == len(sent) and len(frames) == len(sent) - s["drop"] + s["duplicate"]

    received = _collect(gateway, done)
    assert done(received), "received %d frames; proxy stats %s" % (len(received), s)
    return received, dict(s), list(proxy.events)


def test_faults_hit_about_the_rate_and_each_shows_its_effect(opened):
    sent = _frames(random.Random(3), N_FRAMES)
    received, stats, events = _run_faulty(opened, sent, seed=11)
    hit = {i: kind for _, i, kind in events}
    assert sum(stats[k] for k in FAULTS) == len(hit)
    assert 0.12 * N_FRAMES <= len(hit) <= 0.28 * N_FRAMES, stats  # 20%, a frame after a held one is exempt
    assert all(stats[k] >= 10 for k in FAULTS), stats
    sent_set = set(sent)
    for i, kind in hit.items():
        if kind == "drop":
            assert sent[i] not in received, "dropped frame %d arrived" % i
        elif kind == "duplicate":
            at = received.index(sent[i])
            assert received[at + 1] == sent[i] and received.count(sent[i]) == 2, "frame %d" % i
        elif kind == "reorder" and i + 1 < N_FRAMES:
            assert received.index(sent[i]) == received.index(sent[i + 1]) + 1, "frame %d not swapped" % i
        elif kind == "corrupt":
            assert sent[i] not in received, "corrupted frame %d arrived intact" % i
    # frame by frame: what the fault log says must happen is exactly what arrived
    expected, held = [], None
    for i, frame in enumerate(sent):
        if held is not None:
            expected += [frame, held]
            held = None
            continue
        kind = hit.get(i)
        expected += {None: [frame], "drop": [], "duplicate": [frame, frame], "corrupt": [("corrupt", i)]}.get(kind, [])
        if kind == "reorder":
            held = frame
    expected += [held] if held is not None else []
    assert len(received) == len(expected)
    for got, want in zip(received, expected, strict=True):
        if isinstance(want, tuple):  # corrupted: same length and end, unlike anything sent
            assert len(got) == len(sent[want[1]]) and got not in sent_set, (got, sent[want[1]])
            assert got.index(b"\x00") == len(got) - 1
        else:
            assert got == want
    assert sum(isinstance(w, tuple) for w in expected) == stats["corrupt"]


def test_same_seed_same_damage_other_seed_other_damage(opened):
    sent = _frames(random.Random(4), N_FRAMES)
    first = _run_faulty(opened, sent, seed=21)
    again = _run_faulty(opened, sent, seed=21)
    other = _run_faulty(opened, sent, seed=22)
    assert first == again
    assert other[2] != first[2]


@pytest.mark.parametrize("side", ["node", "gateway"])
def test_a_side_closing_and_reopening_its_path_keeps_the_link(opened, side):
    proxy = opened(directions=("up", "down"))
    ports = {"node": opened(proxy.node_path), "gateway": opened(proxy.gateway_path)}
    other = "gateway" if side == "node" else "node"
    frames = _frames(random.Random(5), 40)
    ports[side].write(b"".join(frames[:10]))
    assert _collect(ports[other], _count(10)) == frames[:10]

    ports[side].close()
    ports[other].write(b"".join(frames[10:20]))  # to a closed side: lost or late, never a crash
    key = "frames_down" if side == "node" else "frames_up"
    _wait(lambda: proxy.stats[key] == 10)
    ports[side] = opened(getattr(proxy, side + "_path"))

    ports[side].write(b"".join(frames[20:30]))
    ports[other].write(b"".join(frames[30:40]))
    assert _collect(ports[other], _count(10)) == frames[20:30]
    back = _collect(ports[side], lambda got: got[-10:] == frames[30:40])
    assert back[-10:] == frames[30:40] and set(back) <= set(frames[10:40]), back
    assert proxy.running


@pytest.mark.parametrize("direction", ["up", "down"])
def test_pause_discards_and_resume_relays_again(opened, direction):
    proxy = opened(directions=("up", "down"))
    node, gateway = opened(proxy.node_path), opened(proxy.gateway_path)
    src, dst = (node, gateway) if direction == "up" else (gateway, node)
    frames = _frames(random.Random(6), 15)
    src.write(b"".join(frames[:5]))
    assert _collect(dst, _count(5)) == frames[:5]

    proxy.pause(direction)
    lost = b"".join(frames[5:10])
    src.write(lost)
    _wait(lambda: proxy.stats["paused_bytes_" + direction] == len(lost))
    assert _quiet(dst, 0.2) == b""

    proxy.resume(direction)
    src.write(b"".join(frames[10:]))
    assert _collect(dst, _count(5)) == frames[10:]
    assert proxy.stats["frames_" + direction] == 10


def test_complete_frames_go_at_once_partial_and_held_ones_after_the_idle_flush(opened):
    proxy = opened(idle_flush_s=0.3)
    node, gateway = opened(proxy.node_path), opened(proxy.gateway_path)
    t0 = time.monotonic()
    node.write(b"\x01\x02\x03\x00")
    assert _collect(gateway, _count(1)) == [b"\x01\x02\x03\x00"]
    assert time.monotonic() - t0 < 0.2, "a complete frame waited"

    dropper = opened(faults=("drop",), fault_rate=1.0, idle_flush_s=0.3)
    node, gateway = opened(dropper.node_path), opened(dropper.gateway_path)
    node.write(b"\x04\x05")  # no delimiter yet
    assert _quiet(gateway, 0.15) == b""
    assert _quiet(gateway, 0.5) == b"\x04\x05"
    node.write(b"\x06\x00\x08\x00")  # the flushed frame's tail passes; the next frame is dropped
    assert _quiet(gateway, 0.2) == b"\x06\x00"
    assert dropper.stats["drop"] == 1 and dropper.stats["frames_up"] == 2

    holder = opened(faults=("reorder",), fault_rate=1.0, idle_flush_s=0.3)
    node, gateway = opened(holder.node_path), opened(holder.gateway_path)
    node.write(b"\x07\x00")
    assert _collect(gateway, _count(1), timeout_s=2.0) == [b"\x07\x00"]
    assert holder.stats["reorder"] == holder.stats["reorder_flushed"] == 1


def test_corruption_keeps_length_and_delimiter_and_changes_1_to_3_bytes():
    frame = bytes(range(1, 41)) + b"\x00"
    for seed in range(3000):  # 1 in 255 random masks would turn a byte into 0x00
        damaged = _corrupt(random.Random(seed), frame)
        changed = sum(a != b for a, b in zip(frame, damaged, strict=True))
        assert len(damaged) == len(frame) and damaged.index(0) == len(frame) - 1 and 1 <= changed <= 3


def test_a_side_that_never_reads_costs_bounded_memory_and_never_blocks(opened):
    proxy = opened(buffer_limit=16 * 1024)
    node = opened(proxy.node_path)
    frames = _frames(random.Random(8), 6000)  # ~130 KB: more than the pty and the proxy hold
    node.write(b"".join(frames))  # write_timeout=5: raises if the relay stopped reading
    _wait(lambda: proxy.stats["frames_up"] == len(frames))
    assert proxy.stats["overflow_bytes_up"] > 0 and len(proxy._lanes["up"].out) <= 16 * 1024
    assert proxy.running

    gateway = opened(proxy.gateway_path)  # late: gets a tail of the backlog, then what is new
    fresh = _frames(random.Random(9), 5, min_len=41, max_len=50)
    node.write(b"".join(fresh))
    got = _collect(gateway, lambda got: got[-5:] == fresh)
    assert got[-5:] == fresh, "received %d frames, last %r" % (len(got), got[-5:])
    backlog = got[1:-5]  # the first one may be torn by the flush on open
    order = {f: i for i, f in enumerate(frames)}
    assert all(f in order for f in backlog) and [order[f] for f in backlog] == sorted(order[f] for f in backlog)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        FrameProxy(faults=("melt",))
    with pytest.raises(ValueError):
        FrameProxy(directions=("sideways",))
    with pytest.raises(ValueError):
        FrameProxy(fault_rate=1.5)


@pytest.mark.parametrize("directions", [("up", "down"), ()], ids=["framed", "pass-through"])
def test_installer_port_injects_whole_frames_down_and_hears_what_the_gateway_hears(opened, directions):
    proxy = opened(directions=directions, installer=True)
    node, gateway, installer = opened(proxy.node_path), opened(proxy.gateway_path), opened(proxy.installer_path)
    ups, downs, asks = _frames(random.Random(10), 50), _frames(random.Random(11), 50), _frames(random.Random(12), 50)
    gateway.write(downs[0][:3])  # the gateway is mid-frame: the installer's frames must wait for its end
    for ask in asks:
        installer.write(ask[:2])  # split writes: the proxy waits for the delimiter
        installer.write(ask[2:])
    time.sleep(0.1)
    gateway.write(downs[0][3:] + b"".join(downs[1:]))
    node.write(b"".join(ups))
    got_down = _collect(node, _count(100))
    assert sorted(got_down) == sorted(downs + asks), "frames torn or lost on the way down"
    assert [f for f in got_down if f in set(downs)] == downs and [f for f in got_down if f in set(asks)] == asks
    assert _collect(gateway, _count(50)) == ups
    assert _collect(installer, _count(50)) == ups  # the copy: what the gateway got
    assert proxy.stats["frames_installer"] == 50 and proxy.stats["frames_down"] == 100


def test_installer_frames_suffer_the_down_faults_and_a_proxy_without_the_port_has_none(opened):
    proxy = opened(directions=("down",), faults=("drop",), fault_rate=1.0, installer=True)
    node, installer = opened(proxy.node_path), opened(proxy.installer_path)
    installer.write(b"".join(_frames(random.Random(13), 10)))
    _wait(lambda: proxy.stats["drop"] == 10)
    assert _quiet(node, 0.2) == b""
    plain = opened()
    assert plain.installer_path is None and "frames_installer" not in plain.stats
