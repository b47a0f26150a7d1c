"""The gateway service: sources -> ingest (dedup, align, durable store) -> uplinks, plus health.

    gw = Gateway(load_config("gateway.toml"))
    await gw.run(stop_event)           # until stop_event is set (SIGTERM in `fieldline gateway run`)

Tasks: each source delivers Intakes; one intake task writes them in batches (one SQLite
transaction each) and only then lets the sources acknowledge their devices; one forwarder per
uplink sends the outbox oldest first, several batches in flight, and marks each acknowledged
batch; a failed send backs off exponentially with jitter and starts again from the oldest
unacknowledged batch. A health record of the gateway enters the stream every
``status.health_every_s``; ``GET /status`` serves the same snapshot.
"""

import asyncio
import logging
import os
import random
import time

from gateway.align import Aligner
from gateway.clocks import NodeClocks
from gateway.errors import GatewayError, UplinkError
from gateway.ingest import Ingest
from gateway.sources.base import Intake
from gateway.store import Store
from gateway.stream import iso
from shared_protocol import ReplayGuard

log = logging.getLogger("fieldline.gateway")

MAX_QUEUED = 2000  # intakes waiting for the store before sources stop reading
READINGS_PER_REPORT = 32  # a node report: 4 intervals x 8 quantities
COUNTER_BLOCK = 100000  # gateway frame counters reserved per store write (monotonic across restarts)


class _Ctx:
    """What sources see of the engine."""

    def __init__(self, gw):
        self.gw = gw
        self.guard = gw.guard
        self.clocks = gw.clocks

    @property
    def keyring(self):
        return self.gw.registry.keyring

    def now(self):
        return self.gw.clock()

    def submit(self, intake):
        self.gw.queue.append(intake)
        self.gw.wake.set()

    def saturated(self):
        return len(self.gw.queue) >= MAX_QUEUED

    def next_counter(self):
        return self.gw.next_counter()

    def count_rejected(self, kind):
        r = self.gw.rejected
        r[kind] = r.get(kind, 0) + 1


class Gateway:
    def __init__(self, cfg, registry=None, clock=time.time, sources=None, uplinks=None):
        from gateway.registry import Registry

        self.cfg = cfg
        self.clock = clock
        self.started = clock()
        self.registry = registry if registry is not None else Registry.load(cfg.registry_path)
        os.makedirs(cfg.data_dir, exist_ok=True)
        if uplinks is None:
            from gateway.uplinks import make_uplink

            uplinks = [make_uplink(u, cfg.gateway_id) for u in cfg.uplinks]
        self.uplinks = uplinks
        self.store = Store(
            os.path.join(cfg.data_dir, "gateway.db"),
            max_bytes=int(cfg.outbox.max_mb * (1 << 20)),
            alert_fraction=cfg.outbox.alert_fraction,
            uplinks=len(uplinks),
        )
        self.guard = ReplayGuard()
        self.clocks = NodeClocks()
        self.aligner = Aligner(cfg.grid_s, cfg.rules, cfg.lateness_s)
        self.daily = None
        if cfg.fields:
            from gateway.daily import DailyValues

            self.daily = DailyValues(cfg.fields)
        self.ingest = Ingest(self.store, self.aligner, cfg.gateway_id, self._state, self.daily)
        self.rejected = {}
        self.queue = []
        self.wake = asyncio.Event()
        self.ctx = _Ctx(self)
        self._restore()
        if sources is None:
            sources = [self._make_source(s) for s in cfg.sources]
        self.sources = sources
        self.status = None
        self.alerting = False
        self.alert_sent = False
        # intakes per transaction (= per upstream batch): outbox.batch_max_items readings, ~32 per report
        self.per_write = max(1, cfg.outbox.batch_max_items // READINGS_PER_REPORT)
        self.uplink_backoff = [0.0] * len(uplinks)

    # ---- persistence ----
    def _restore(self):
        st = self.store
        self.guard.restore({int(k): v for k, v in (st.get_state("guard") or {}).items()})
        self.clocks.restore(st.get_state("clocks"))
        if self.daily is not None:
            self.daily.restore(st.get_state("agronomy"))
        for (k,) in st.db.execute("SELECT k FROM state WHERE k LIKE 'align.%'"):
            self.aligner.restore(k[6:], st.get_state(k))
        self._counter = int(st.get_state("gw.counter", 0)) + 1
        self._counter_reserved = self._counter + COUNTER_BLOCK
        st.put_state({"gw.counter": self._counter_reserved})

    def _state(self):
        return {"guard": {str(k): v for k, v in self.guard.state().items()}, "clocks": self.clocks.state()}

    def next_counter(self):
        c = self._counter
        self._counter += 1
        if self._counter >= self._counter_reserved:
            self._counter_reserved = self._counter + COUNTER_BLOCK
            self.store.put_state({"gw.counter": self._counter_reserved})
        return c

    def _make_source(self, scfg):
        if scfg.kind == "node":
            from gateway.sources.node import NodeSource

            return NodeSource(scfg, self.ctx)
        from gateway.config import source_module

        mod = source_module(scfg.kind)
        if mod is None or not hasattr(mod, "make_source"):
            raise GatewayError("source kind %r is not available" % scfg.kind)
        return mod.make_source(scfg, self.ctx)

    # ---- run ----
    async def run(self, stop):
        """Run until ``stop`` (an asyncio.Event) is set; then shut down cleanly."""
        log.info(
            "gateway %s starting: %d sources, %d uplinks, store %s",
            self.cfg.gateway_id,
            len(self.sources),
            len(self.uplinks),
            self.store.path,
        )
        for up in self.uplinks:
            await up.start()
        for src in self.sources:
            await src.start()
        await self._start_status()
        tasks = [asyncio.create_task(self._intake_loop(), name="intake")]
        tasks += [asyncio.create_task(self._forward(i), name="uplink-%d" % i) for i in range(len(self.uplinks))]
        tasks.append(asyncio.create_task(self._periodic(), name="periodic"))
        try:
            await stop.wait()
        finally:
            log.info("gateway %s stopping", self.cfg.gateway_id)
            for src in self.sources:
                await src.stop()
            self._drain_queue()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for up in self.uplinks:
                await up.stop()
            if self.status is not None:
                await self.status.stop()
            self.store.close()
            log.info("gateway %s stopped", self.cfg.gateway_id)

    async def _start_status(self):
        s = self.cfg.status
        if s.port is None or s.port < 0:
            return
        from gateway.status import StatusServer

        self.status = StatusServer(s.bind, s.port, s.token, self.snapshot, accept=self.accept_record)
        self.status_port = await self.status.start()
        log.info("status on http://%s:%d/status", s.bind, self.status_port)

    def _drain_queue(self):
        while self.queue:
            if not self._write_some():
                break

    def _write_some(self, now=None, flush=False):
        batch = self.queue[: self.per_write]
        ok = self.ingest.process(batch, now=now, flush=flush)
        stored = len(batch) if ok else 0
        if not ok and len(batch) > 1:
            # near the bound: store what still fits, one intake at a time, before refusing the rest
            for it in batch:
                if not self.ingest.process([it]):
                    break
                stored += 1
        for it in batch[:stored]:
            if it.done is not None:
                it.done(not it.bad)
        if stored < len(batch):
            if not self.alerting:
                log.error("store full: intake paused until the uplinks drain the outbox")
            self.alerting = True
            for it in batch[stored:]:
                if it.done is not None:
                    it.done(False)  # the source does not acknowledge: its device keeps the data
        else:
            self.alerting = False
        del self.queue[: len(batch)]
        return stored == len(batch)

    async def _intake_loop(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                if not self._write_some():
                    await asyncio.sleep(1.0)
                await asyncio.sleep(0)  # let sources and uplinks run between transactions

    async def _periodic(self):
        every = self.cfg.status.health_every_s
        next_health = self.clock()
        while True:
            try:
                next_health = self._tick(next_health, every)
            except Exception:  # a bug here must not end health reporting for good: log it, go on
                log.exception("periodic gateway task failed; retrying")
            await asyncio.sleep(min(5.0, every))

    def _tick(self, next_health, every):
        """Alerts, the health record, cells that waited long enough, registry changes."""
        now = self.clock()
        if self.store.alert() != self.alert_sent:
            self.alert_sent = not self.alert_sent
            self._own_record(self.alert_record())
        if now >= next_health:
            self._own_record(self.health_record())
            next_health = now + every
        self.ingest.process([], now=now)
        self.wake.set()
        try:
            self.registry.reload_if_changed()
        except GatewayError as e:
            log.error("device registry: %s (keeping the previous keys)", e)
        return next_health

    async def _forward(self, i):
        up = self.uplinks[i]
        inflight = {}
        backoff = 0.0
        bmin = float(getattr(up, "backoff_min_s", 1.0))
        bmax = float(getattr(up, "backoff_max_s", 60.0))
        after = 0
        while True:
            room = max(1, up.max_inflight) - len(inflight)
            batches = self.store.pending(i, limit=room, after=after, gateway_id=self.cfg.gateway_id) if room else []
            for b in batches:
                inflight[b.seq] = asyncio.create_task(up.send(b))
                after = b.seq
            if not inflight:
                await asyncio.sleep(0.05)
                continue
            done, _ = await asyncio.wait(inflight.values(), return_when=asyncio.FIRST_COMPLETED, timeout=1.0)
            ok, failed = [], False
            for seq, t in list(inflight.items()):
                if t not in done:
                    continue
                del inflight[seq]
                exc = t.exception()
                if exc is None:
                    ok.append(seq)
                else:
                    failed = True
                    if not isinstance(exc, UplinkError):
                        log.error("uplink %s: unexpected %r", up.kind, exc)
            if ok:
                self.store.acked(i, ok)
                backoff = 0.0
            if failed:
                # wait for what is still in flight, then start again from the oldest unacknowledged
                if inflight:
                    await asyncio.wait(inflight.values(), timeout=30)
                    good = [s for s, t in inflight.items() if t.done() and t.exception() is None]
                    self.store.acked(i, good)
                    inflight.clear()
                after = 0
                backoff = min(bmax, max(bmin, backoff * 2))
                self.uplink_backoff[i] = backoff
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))  # jitter: gateways do not stampede

    # ---- health ----
    def snapshot(self):
        batches, items, oldest = self.store.depth()
        now = self.clock()
        disk = self.store.disk_bytes()
        return {
            "gateway": self.cfg.gateway_id,
            "time": iso(int(now)),
            "uptime_s": round(now - self.started, 1),
            "sources": [s.health() for s in self.sources],
            "last_reading": {s.name: s.health().get("last_rx") for s in self.sources},
            "outbox": {"batches": batches, "items": items, "oldest_age_s": round(now - oldest, 1) if oldest else 0.0},
            "uplinks": [dict(u.state(), backoff_s=self.uplink_backoff[i]) for i, u in enumerate(self.uplinks)],
            "rejected_frames": dict(self.rejected),
            "duplicates_dropped": self.ingest.duplicates,
            "queued_intakes": len(self.queue),
            "disk": {
                "bytes": disk,
                "max_bytes": self.store.max_bytes,
                "fill": round(disk / self.store.max_bytes, 4),
                "alert": self.store.alert(),
                "pruned_frames": self.store.pruned_frames,
                "refusals": self.store.refusals,
            },
            "devices": len(self.registry),
        }

    def health_record(self):
        snap = self.snapshot()
        snap.update({"kind": "gateway_health", "source": "gateway-" + self.cfg.gateway_id, "ts": snap["time"]})
        snap["key"] = "%s/gateway_health/%s" % (snap["source"], snap["ts"])
        return snap

    def accept_record(self, rec):
        """A record posted to the status endpoint (an installer's onboarding report): stored now, then
        forwarded like any other; False when the store is full (the poster keeps it and retries)."""
        return self.ingest.process([Intake(rec["source"], records=[(None, None, rec)])])

    def _own_record(self, rec):
        """The gateway's own health and alerts: stored at once, into the store's reserve if it is full."""
        intake = Intake("gateway-" + self.cfg.gateway_id, records=[(None, None, rec)])
        if not self.ingest.process([intake], reserve=True):
            log.error("store full even for its reserve: %s record not stored", rec["kind"])

    def alert_record(self):
        now = iso(int(self.clock()))
        src = "gateway-" + self.cfg.gateway_id
        return {
            "kind": "gateway_alert",
            "source": src,
            "ts": now,
            "alert": "store_near_full" if self.alert_sent else "store_ok",
            "fill": round(self.store.fill(), 4),
            "max_bytes": self.store.max_bytes,
            "fix": "restore the uplink or raise outbox.max_mb; intake pauses at 100% and nothing is dropped",
            "key": "%s/gateway_alert/%s" % (src, now),
        }
