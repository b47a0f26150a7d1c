"""The source contract: every source (nodes, SDI-12, Modbus, BLE) hands the engine Intakes.

    src = make_source(cfg, ctx)        # NodeSource, ... (parallel names in sources/)
    await src.start(); ...; await src.stop(); src.health()

A source turns what its devices say into Intakes and passes them to ``ctx.submit(intake)``;
the engine stores each intake durably (one SQLite transaction for many) and then calls
``intake.done(True)`` -- only then may a source acknowledge its device. ``done(False)`` means
the store refused (disk bound): the source must not acknowledge, the device keeps the data.
"""

import abc
import asyncio


class Intake:
    """What one source delivered at once (e.g. one node frame).

    ``block``: interval summaries as (sensor, starts, span_s, stats, qflags, shift_s, samples) with stats
    {quantity: {"mean": [...], "min": [...], "max": [...], "count": [...]}}, or a report's undecoded
    ``stats_raw`` {quantity id: wire row} (decoded in bulk by gateway.columns), aligned with starts (the
    device's own integer stamps: deduplicated by (source, start)), ``qflags`` {quantity: extra
    flag bits} and ``shift_s`` the clock correction (aligned time = start - shift_s);
    ``readings``: instantaneous readings (sensor, quantity, value, ts, unit, flags); ``records``:
    (kind, start, dict) upstream records (health, daily, hello, log...) deduplicated by (source,
    kind, start) when kind is not None;
    ``frame``: (device, counter, rx, wire) kept raw; ``flags``: quality bits for all its data.
    """

    __slots__ = ("source", "block", "readings", "records", "frame", "flags", "done", "bad")

    def __init__(self, source, block=None, readings=(), records=(), frame=None, flags=0, done=None):
        self.source = source
        self.block = block
        self.readings = readings
        self.records = records
        self.frame = frame
        self.flags = flags
        self.done = done
        self.bad = None  # set by the ingest when a value breaks the wire format's rules (not stored)


class Source(abc.ABC):
    kind = "base"

    def __init__(self, name, ctx):
        self.name = name
        self.ctx = ctx

    @abc.abstractmethod
    async def start(self):
        """Begin delivering; must not raise because a device or port is absent (retry instead)."""

    @abc.abstractmethod
    async def stop(self):
        """Stop and release the port."""

    def _spawn(self, coro):
        """Run ``coro`` (the source's loop) as this source's task."""
        self._task = asyncio.create_task(coro, name="%s-source-%s" % (self.kind, self.name))

    async def _cancel(self):
        """Cancel the source's task and wait until it has ended."""
        task, self._task = getattr(self, "_task", None), None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    @abc.abstractmethod
    def health(self):
        """A JSON-able dict: kind, name, connected, last_rx (epoch s or None), counters."""
