"""Store: one SQLite file (WAL) with raw frames, dedup key blocks, the outbox and small state.

Real SQLite files in tmp_path: atomic writes, outbox order and per-uplink acks, dedup by
blocks (also after a reopen), the disk bound (raw frames pruned first, the outbox never
touched), and durability across close/reopen and a SIGKILL right after write() returned.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from gateway.errors import OutboxFull, StoreError
from gateway.store import KIND_DAILY, KIND_HEALTH, KIND_INTERVAL, Store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T0 = 1780272000
SRC = "node-7"


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "data" / "gateway.db")


def frame(counter, wire=b"\x05wire\x00"):
    return (SRC, 7, counter, 1000.0 + counter, wire)


def everything(st):
    """All rows of every table: what a test compares before and after."""
    db = st.db
    return {
        t: db.execute("SELECT * FROM %s ORDER BY 1, 2" % t).fetchall() for t in ("frames", "records", "outbox", "state")
    }


def seqs(batches):
    return [b.seq for b in batches]


# ---- one intake, one transaction ----
def test_write_stores_frames_keys_batch_and_state(path):
    st = Store(path)
    seq = st.write(
        frames=[frame(1), frame(2)],
        keys=[
            (SRC, KIND_INTERVAL, T0, T0 + 3600, 0),
            (SRC, KIND_HEALTH, T0, T0 + 1, 1),
            (SRC, KIND_DAILY, 20605, 20606, None),
        ],
        payload_for=lambda s: b"batch %d" % s,
        items=33,
        state={"guard": {"7": 2}, "clock": [1.5, None]},
    )
    assert seq == 1
    assert st.counts() == {"frames": 2, "records": 3}
    db = st.db
    assert db.execute("SELECT source, device, counter, rx, wire FROM frames ORDER BY id").fetchall() == [
        frame(1),
        frame(2),
    ]
    f1, f2 = [r[0] for r in db.execute("SELECT id FROM frames ORDER BY id")]
    assert db.execute("SELECT kind, start, end, frame FROM records ORDER BY kind").fetchall() == [
        (KIND_INTERVAL, T0, T0 + 3600, f1),
        (KIND_DAILY, 20605, 20606, None),
        (KIND_HEALTH, T0, T0 + 1, f2),
    ]
    (b,) = st.pending(0, gateway_id="gw-1")
    assert (b.seq, b.key, b.payload, b.count) == (1, "gw-1:1", b"batch 1", 33)
    assert st.get_state("guard") == {"7": 2} and st.get_state("clock") == [1.5, None]
    assert st.get_state("missing", "dflt") == "dflt"
    assert st.write(frames=[frame(3)]) is None  # nothing to forward: no batch
    assert st.depth()[0] == 1


def test_a_raising_payload_builder_leaves_nothing(path):
    st = Store(path)
    before = everything(st)

    def payload_for(seq):
        raise RuntimeError("encoder broke")

    with pytest.raises(RuntimeError):
        st.write([frame(1)], [(SRC, KIND_INTERVAL, T0, T0 + 900, 0)], payload_for, 4, {"k": 1})
    assert everything(st) == before
    assert st.write([frame(1)], payload_for=lambda s: b"x") == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"keys": [(SRC, KIND_INTERVAL, T0, T0 + 900, 5)]},  # frame index out of range: fails after the frames went in
        {"state": {"bad": object()}},  # not JSON: fails after frames, keys and the batch went in
        {"frames": [frame(2), (SRC, 7, 3, 1.0, None)]},  # NOT NULL wire: SQLite refuses the second frame
    ],
    ids=["bad_frame_index", "state_not_json", "null_wire"],
)
def test_a_failure_inside_the_transaction_leaves_nothing(path, bad):
    st = Store(path)
    st.write([frame(1)], [(SRC, KIND_INTERVAL, T0 - 900, T0, 0)], lambda s: b"first", 1, {"k": "old"})
    before = everything(st)
    args = {
        "frames": [frame(2), frame(3)],
        "keys": [(SRC, KIND_INTERVAL, T0, T0 + 900, 0)],
        "payload_for": lambda s: b"second",
        "items": 4,
        "state": {"k": "new"},
    }
    args.update(bad)
    with pytest.raises((IndexError, TypeError, StoreError)):
        st.write(**args)
    assert everything(st) == before
    st.close()
    assert everything(Store(path)) == before


def test_a_failed_write_does_not_skip_an_outbox_seq(path):
    """Batch keys are "<gateway>:<seq>": a rolled-back write must not leave a hole upstream sees as a lost batch."""
    st = Store(path)
    assert st.write(payload_for=lambda s: b"one") == 1
    with pytest.raises(TypeError):
        st.write(payload_for=lambda s: b"two", state={"bad": object()})
    assert st.write(payload_for=lambda s: b"two") == 2
    assert seqs(st.pending()) == [1, 2]


def test_a_corrupt_file_is_a_store_error(tmp_path):
    p = tmp_path / "gateway.db"
    p.write_bytes(b"this is not an SQLite database, it is a text file long enough to have a header" * 20)
    with pytest.raises(StoreError, match="cannot open"):
        Store(str(p))


# ---- outbox ----
def test_pending_is_oldest_first_with_limit_and_after(path):
    st = Store(path)
    for i in range(5):
        st.write(payload_for=lambda s: b"p%d" % s, items=i + 1)
    assert seqs(st.pending()) == [1, 2, 3, 4, 5]
    assert [b.payload for b in st.pending(limit=2)] == [b"p1", b"p2"]
    assert seqs(st.pending(after=3)) == [4, 5]
    st.acked(0, [2, 4])
    assert seqs(st.pending()) == [1, 3, 5]
    assert [b.count for b in st.pending()] == [1, 3, 5]
    st.acked(0, [])  # nothing: no error


def test_two_uplinks_a_batch_leaves_when_both_acked(path):
    st = Store(path, uplinks=2)
    t_before = time.time()
    for _ in range(3):
        st.write(payload_for=lambda s: b"x" * s, items=10)
    t_after = time.time()
    n, items, oldest = st.depth()
    assert (n, items) == (3, 30) and t_before <= oldest <= t_after
    st.acked(0, [1, 2])
    assert seqs(st.pending(0)) == [3] and seqs(st.pending(1)) == [1, 2, 3]
    assert st.depth()[:2] == (3, 30)  # acked by one uplink only: still there
    st.acked(1, [2, 3])
    assert seqs(st.pending(0)) == [3] and seqs(st.pending(1)) == [1]
    assert st.depth()[:2] == (2, 20)  # seq 2 left: both acked it
    st.acked(0, [3])
    st.acked(1, [1])
    assert st.depth() == (0, 0, None)
    assert st.pending(0) == [] and st.pending(1) == []


def test_seq_never_repeats_after_the_outbox_drained_and_reopened(path):
    st = Store(path)
    st.write(payload_for=lambda s: b"a")
    st.write(payload_for=lambda s: b"b")
    st.acked(0, [1, 2])
    st.close()
    st = Store(path)
    assert st.write(payload_for=lambda s: b"c") == 3


# ---- dedup by blocks ----
def test_new_starts_dedups_by_blocks_and_mark(path):
    st = Store(path)
    st.write(keys=[(SRC, KIND_INTERVAL, T0, T0 + 3600, None)])
    q = [T0 - 900, T0, T0 + 900, T0 + 2700, T0 + 3600]
    assert st.new_starts(SRC, KIND_INTERVAL, q) == [T0 - 900, T0 + 3600]
    assert st.new_starts(SRC, KIND_HEALTH, q) == q  # another kind
    assert st.new_starts("node-8", KIND_INTERVAL, q) == q  # another source
    st.mark(SRC, KIND_INTERVAL, [T0 + 3600, T0 + 4500])  # about to be written in this intake
    assert st.new_starts(SRC, KIND_INTERVAL, [T0 + 3600, T0 + 4500, T0 + 5400]) == [T0 + 5400]
    st.forget(SRC, KIND_INTERVAL, [T0 + 3600, T0 + 4500])  # the intake was not written
    assert st.new_starts(SRC, KIND_INTERVAL, [T0 + 3600, T0 + 4500]) == [T0 + 3600, T0 + 4500]
    assert st.take_new(SRC, KIND_INTERVAL, [T0 + 2700, T0 + 3600, T0 + 4500]) == [T0 + 3600, T0 + 4500]
    assert st.take_new(SRC, KIND_INTERVAL, [T0 + 3600, T0 + 4500, T0 + 5400]) == [T0 + 5400]  # taken above


def test_new_starts_after_a_reopen_sees_inside_stored_blocks(path):
    st = Store(path)
    st.write(keys=[(SRC, KIND_INTERVAL, T0, T0 + 3600, None)])  # four quarter hours: T0 .. T0 + 2700
    st.close()
    st = Store(path)
    # a report overlapping the stored one by two intervals, the first thing asked after the restart
    assert st.new_starts(SRC, KIND_INTERVAL, [T0 + 1800, T0 + 2700, T0 + 3600, T0 + 4500]) == [T0 + 3600, T0 + 4500]


def test_new_starts_after_a_reopen_whole_resend(path):
    st = Store(path)
    st.write(keys=[(SRC, KIND_INTERVAL, T0, T0 + 3600, None), (SRC, KIND_INTERVAL, T0 + 7200, T0 + 10800, None)])
    st.close()
    st = Store(path)
    assert st.new_starts(SRC, KIND_INTERVAL, [T0, T0 + 900, T0 + 1800, T0 + 2700]) == []
    assert st.new_starts(SRC, KIND_INTERVAL, [T0 + 3600, T0 + 7200, T0 + 10800]) == [T0 + 3600, T0 + 10800]


# ---- state ----
def test_state_round_trip_and_overwrite(path):
    st = Store(path)
    st.put_state({"align.node-7": {"last": {"node|ndvi": T0}, "open": [], "wm": T0 + 900.5}, "n": 1})
    st.put_state({"n": 2})
    st.close()
    st = Store(path)
    assert st.get_state("align.node-7") == {"last": {"node|ndvi": T0}, "open": [], "wm": T0 + 900.5}
    assert st.get_state("n") == 2
    assert st.depth()[0] == 0  # state alone is no batch


# ---- the disk bound ----
def test_full_store_prunes_raw_frames_first_and_keeps_the_outbox(path):
    st = Store(path, max_bytes=2 << 20)
    blob = os.urandom(20000)
    written = {}
    with pytest.raises(OutboxFull):
        for i in range(1000):
            st.ensure_room(25000)
            seq = st.write(
                [frame(i, blob)],
                [(SRC, KIND_INTERVAL, T0 + i * 900, T0 + (i + 1) * 900, 0)],
                lambda s, i=i: b"batch-%d-" % i + bytes(3000),
                1,
            )
            written[seq] = b"batch-%d-" % i + bytes(3000)
    assert st.pruned_frames > 0 and st.refusals == 1
    assert st.counts()["frames"] < len(written)  # raw frames went first ...
    assert {b.seq: b.payload for b in st.pending(limit=10000)} == written  # ... no batch was lost
    assert st.counts()["records"] == len(written)  # and dedup still knows every interval
    assert st.new_starts(SRC, KIND_INTERVAL, [T0, T0 + 900]) == []


def test_a_drained_outbox_never_refuses_intake(path):
    """With every batch acknowledged the store holds nothing but state: it must take new intakes."""
    st = Store(path, max_bytes=1 << 20)
    for _ in range(60):  # 60 x 20 kB through the outbox, never more than one batch in it
        st.ensure_room(20000)
        seq = st.write(payload_for=lambda s: os.urandom(20000), items=1)
        st.acked(0, [seq])
    assert st.depth()[0] == 0


# ---- durability ----
def test_data_survive_close_and_reopen(path):
    st = Store(path, uplinks=2)
    st.write([frame(1)], [(SRC, KIND_INTERVAL, T0, T0 + 900, 0)], lambda s: b"one", 4, {"k": [1, 2]})
    st.write([frame(2)], [(SRC, KIND_INTERVAL, T0 + 900, T0 + 1800, 0)], lambda s: b"two", 4)
    st.acked(0, [1])
    before = everything(st)
    st.close()
    st = Store(path, uplinks=2)
    assert everything(st) == before
    assert seqs(st.pending(0)) == [2] and seqs(st.pending(1)) == [1, 2]
    st.write([frame(3)])  # frame ids continue
    assert st.counts()["frames"] == 3


_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[2])
from gateway.store import Store, KIND_INTERVAL
st = Store(sys.argv[1])
seq = st.write([("node-7", 7, 1, 1.0, b"wire")], [("node-7", KIND_INTERVAL, 100, 1000, 0)],
               lambda s: b"payload", 9, {"guard": {"7": 1}})
print("written", seq, flush=True)
time.sleep(60)
"""


@pytest.mark.sim
def test_a_write_survives_sigkill_right_after_it_returned(path):
    child = subprocess.Popen([sys.executable, "-c", _CHILD, path, ROOT], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = child.stdout.readline()
        assert line == b"written 1\n", "child said %r; stderr: %s" % (
            line,
            child.stderr.read1(4000) if line == b"" else "",
        )
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
        child.stderr.close()
    st = Store(path)
    assert st.counts() == {"frames": 1, "records": 1}
    ((b),) = st.pending()
    assert (b.seq, b.payload, b.count) == (1, b"payload", 9)
    assert st.get_state("guard") == {"7": 1}
    assert st.new_starts("node-7", KIND_INTERVAL, [100, 900, 1000]) == [1000]
