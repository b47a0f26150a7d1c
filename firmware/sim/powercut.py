"""Power-cut campaign: cut the virtual flash at random writes while the node logs, reboot, check the log.

    trials, lost = powercut_campaign("/tmp/pc.img", trials=60, seed=1)
    c = Campaign("/tmp/pc.img", seed=1); c.run(60); print(c.report())

One image ages through all trials. Each trial: mount (no format after the first), open the FlashLog,
check it against what the harness knows (every append that returned is there unless acked or dropped
by the ring, in seq order, payloads intact, the reserved counter above every value handed out), then
run appends / pending+acks / counter reservations until the write chosen for the cut, and unmount.
records_lost counts returned-but-missing records the ring's ``dropped`` does not explain; anything
that must never happen (a wrong payload, a repeat, a counter going back, an ack undone) raises
CampaignError.
"""

import os

from fieldnode.boards.virtual.flash import FileBlockDev, PowerCut, mount, umount
from fieldnode.flashlog import FlashLog, ReservedCounter

from sim.prng import Prng


class CampaignError(Exception):
    """The log broke a promise that no power cut excuses."""


def payload_for(seq):
    """The payload the harness appends as record ``seq`` (1..60 bytes, content tied to seq)."""
    n = 1 + (seq * 37) % 60
    b = bytearray(n)
    for i in range(n):
        b[i] = (seq * 131 + i * 7) & 0xFF
    return b


def kind_for(seq):
    return 1 + seq % 5


class Campaign:
    def __init__(
        self,
        path,
        seed=1,
        block_size=512,
        block_count=64,
        mount_point="/pcflash",
        max_bytes=2400,
        segment_bytes=480,
        max_writes=300,
        counter_block=8,
    ):
        self.path = path
        self.rng = Prng(seed)
        self.seed = seed
        self.geometry = (block_size, block_count)
        self.mount_point = mount_point
        self.log_args = (mount_point + "/log", max_bytes, segment_bytes)
        self.max_writes = max_writes
        self.counter_block = counter_block
        self.trials = 0
        self.records_lost = 0
        self.records_checked = 0
        self.dropped = 0  # records the ring dropped (as the log counted them)
        self.corrupt = 0  # corrupt regions the log met (littlefs should leave none)
        self.torn = 0  # cuts that left a partial write in the image
        self.writes = 0
        # what the harness knows
        self._last_ok = 0  # highest seq whose append() returned
        self._inflight = 0  # seq of the append the cut interrupted, 0 if none
        self._acked_ok = 0  # highest ack() that returned
        self._ack_try = 0  # highest ack() attempted
        self._ctr_max = -1  # highest counter value handed out
        self._dropped_base = 0
        self._floor = 1  # records below are gone for good (acked, or dropped by the ring before)

    def run(self, trials):
        for _ in range(trials):
            self._trial()
        return self.trials, self.records_lost

    def report(self):
        return "trials=%d lost=%d checked=%d dropped=%d corrupt=%d torn=%d writes=%d" % (
            self.trials,
            self.records_lost,
            self.records_checked,
            self.dropped,
            self.corrupt,
            self.torn,
            self.writes,
        )

    def _trial(self):
        bs, bc = self.geometry
        dev = FileBlockDev(self.path, bs, bc, tear_seed=self.seed + self.trials)
        mount(dev, self.mount_point, mkfs=self.trials == 0)
        log = FlashLog(*self.log_args)
        ctr = ReservedCounter(log, "fcnt", self.counter_block)
        self._check(log, ctr)
        dev.arm(1 + self.rng.next_u32() % self.max_writes)
        try:
            self._work(log, ctr)
        except PowerCut:
            pass
        if not dev.cut:
            raise CampaignError("trial %d: workload ended without a power cut" % self.trials)
        self.torn += 1 if dev.torn[2] else 0
        self.writes += dev.writes
        log = ctr = None
        umount(self.mount_point, dev)
        self.trials += 1

    def _check(self, log, ctr):
        t = self.trials
        a = log.acked
        if a < self._acked_ok or a > max(self._ack_try, self._acked_ok):
            raise CampaignError("trial %d: acked %d outside [%d, %d]" % (t, a, self._acked_ok, self._ack_try))
        exp = max(a + 1, self._floor)
        first = True
        front_gap = 0
        for seq, kind, payload in log.pending():
            self._check_record(seq, kind, payload, exp)
            if seq > self._last_ok and seq != self._inflight:
                raise CampaignError("trial %d: record %d was never appended (last %d)" % (t, seq, self._last_ok))
            if seq > exp:
                if first:
                    front_gap = seq - exp
                else:
                    self.records_lost += seq - exp
            if first:
                self._floor = seq
            exp = seq + 1
            first = False
        if first:
            self._floor = log.next_seq
        if exp <= self._last_ok:  # the newest records: the ring never drops these
            self.records_lost += self._last_ok - exp + 1
        self.dropped = log.dropped
        explained = log.dropped - self._dropped_base
        if front_gap > explained:
            self.records_lost += front_gap - explained
        self.records_checked += max(0, self._last_ok - a)
        self.corrupt += log.corrupt
        v = ctr.next()
        if v <= self._ctr_max:
            raise CampaignError("trial %d: counter %d after %d was handed out" % (t, v, self._ctr_max))
        self._ctr_max = v
        self._last_ok = log.next_seq - 1
        self._inflight = 0
        self._acked_ok = self._ack_try = log.acked
        self._dropped_base = log.dropped

    def _check_record(self, seq, kind, payload, exp):
        if seq < exp:
            raise CampaignError(
                "trial %d: record %d out of order or repeated (expected >= %d)" % (self.trials, seq, exp)
            )
        if kind != kind_for(seq) or payload != payload_for(seq):
            raise CampaignError("trial %d: record %d has a wrong kind or payload" % (self.trials, seq))

    def _work(self, log, ctr):
        rng = self.rng
        outage = self.trials % 3 == 2  # no acks: the backlog grows and the ring drops
        for _ in range(20000):
            r = rng.next_u32() % 100
            if r < 60:
                seq = log.next_seq
                self._inflight = seq
                got = log.append(kind_for(seq), payload_for(seq))
                if got != seq:
                    raise CampaignError("append returned %d, expected %d" % (got, seq))
                self._last_ok = seq
                self._inflight = 0
            elif r < 85 and not outage:
                exp = log.acked + 1
                last = 0
                for seq, kind, payload in log.pending(1 + r % 6):
                    self._check_record(seq, kind, payload, exp)
                    exp = seq + 1
                    last = seq
                if last:
                    self._ack_try = last
                    log.ack(last)
                    self._acked_ok = last
            elif r < 92:
                v = ctr.next()
                if v <= self._ctr_max:
                    raise CampaignError("counter %d after %d" % (v, self._ctr_max))
                self._ctr_max = v
            else:
                log.count_pending
        raise CampaignError("no power cut after 20000 operations")


def powercut_campaign(path, trials, seed=1, **kw):
    """Run ``trials`` power cuts on a fresh image at ``path``; returns (trials, records_lost)."""
    c = Campaign(path, seed, **kw)
    try:
        return c.run(trials)
    finally:
        umount(c.mount_point)
        for p in (path, path + ".ghost"):
            try:
                os.remove(p)
            except OSError:
                pass
