"""The node: wake -> sample -> summarise -> log -> send -> sleep, on any board.

    node = Node(board)
    ms, deep = node.wake()          # one cycle; then board.lightsleep(ms) or deepsleep(ms)

Interval summaries, health and daily records are appended to the flash log the moment
they are complete; a report frame carries the oldest pending records and they leave the
log only when the gateway acked that frame. Without a valid config the node is
"unprovisioned": it still says hello and answers diagnostics, and measures nothing.
"""

import gc
import struct

from micropython import const

from fieldnode import FW_VERSION, agro, settings
from fieldnode.flashlog import FlashLog, ReservedCounter
from fieldnode.link import Link
from fieldnode.power import PowerManager, plan
from fieldnode.scheduler import Schedule
from fieldnode.sensors import Sensors
from fieldnode.summary import DailyStats, StateError, Stats
from shared_protocol.cbor import dumps, loads
from shared_protocol.quantities import INTERVAL_QUANTITIES, RANGED

# Private const() names cost the node nothing at run time (no name, no dict entry): every
# interned name costs heap, and a few too many make MicroPython grow its name table by 640.
# Interval quantities: INTERVAL_QUANTITIES, in record order; RANGED ones also send min/max.
_NQ = const(8)
_K_INTERVAL = const(1)  # flash log record kinds
_K_HEALTH = const(2)
_K_DAILY = const(3)
# interval record ">IH": start epoch s, samples; then _NQ x ">Hfff" (count, mean, min, max)
_REC_LEN = const(6)
_Q_LEN = const(14)
_MAX_FRAMES = const(24)  # frames sent per wake at most
_LIGHT_MIN = const(50)  # W m-2 incident shortwave below which reflectance is not computed (night, dusk)
_RED = const(7)  # AS7341 channels: F8 680 nm, F5 555 nm, CLEAR, NIR 910 nm
_GREEN = const(4)
_CLEAR = const(8)
_NIR = const(9)
FAULT_WORDS = (
    "spectral_up spectral_down ir_canopy ir_sky air_th air_pressure accelerometer gnss fuel_gauge flash "
    "clock_unsynced config"
)
_SANE_EPOCH_MS = 1704067200000  # 2024-01-01
_STEP_BACK_MAX = const(3600)  # s: a clock stepped back further than this starts afresh
_GC_EVERY = const(16384)  # bytes allocated between automatic collections
_RTC_MAGIC = const(0x464C)  # "FL"
# RTC memory header ">HIIBBi" (16 bytes): magic, last sample s, last health s, power mode, flags, link guard top
_RTC_HDR_LEN = const(16)


class Node:
    def __init__(self, board, config_path=None, cfg=None):
        self.board = board
        self.cause = board.reset_cause()
        gc.threshold(_GC_EVERY)  # collect early and often: live data stays packed, big blocks stay free
        root = board.flash_root
        self.config_path = config_path or root + "/config.json"
        # the long-lived objects first, the config module's short visit last: its code leaves
        # one free block behind instead of a hole among the node's objects
        self.log = FlashLog(root + "/log")
        self.counter = ReservedCounter(self.log, "fcnt", 64)
        self.sensors = Sensors(board)
        self.stats = Stats(_NQ)
        self.daily = DailyStats()
        self.refl = [None] * 10
        self.cfg = cfg = cfg or settings.load(board, self.config_path)
        self.link = Link(board.uart, cfg.device_id, cfg.key, self.counter, self._request, board.time_ms)
        self.power = PowerManager(cfg)
        self.sched = None
        self._plan(self.power.mode)
        self.last_sample = 0
        self.last_health = 0
        self.synced = False
        self.clock_offset_ms = 0
        self.last_tilt = None
        self.wakes = 0
        self._cause_told = self.cause == "deepsleep"
        self._restore_rtc()

    def _plan(self, mode):
        self.plan = p = plan(mode, self.cfg)
        self.sched = Schedule(p.sample_s, p.summary_min, p.report_min, p.health_min, self.cfg.utc_offset_min)
        self.board.set_load_w(p.load_w)

    # ---- the cycle ----
    def wake(self):
        """One wake: returns (ms to sleep, deep sleep?)."""
        b = self.board
        b.feed_watchdog()
        first = self.wakes == 0 and self.cause != "deepsleep"
        self.wakes += 1
        if first:
            self._hello()
        if not self.cfg.provisioned:
            self.link.listen(200)
            return 60000, False
        if first:
            self._sync_time()
        now = b.time_ms() // 1000
        prev = self.last_sample or now
        s = self.sensors.read_power()
        mode, changed = self.power.update(s.soc_pct)  # None (gauge failed) keeps the mode
        if changed:
            self._plan(mode)
        last = self.last_sample
        st = self.sched
        if last and last - now < _STEP_BACK_MAX and st.interval_start(now) < st.interval_start(last) and not changed:
            # a resync stepped the clock back into an interval already closed and sent: wait for
            # the clock to return rather than close it twice (a longer step starts afresh)
            return self._sleep(mode)
        if self.plan.sensors_on:
            self._sample(now)
        elif self.last_sample:
            closed = self.sched.closes_interval(prev, now)
            if closed is not None:
                self._close_interval(closed)
        day = self.sched.day_closed(prev, now)
        if day is not None:
            self._close_day(day)
        if changed or first or self.sched.health_due(self.last_health or prev, now):
            self._health(now)
        self.last_sample = now
        if first or self.power.must_report(changed) or self.sched.report_due(prev, now):
            if not self.synced or day is not None:
                self._sync_time()
            if self._send_pending():
                self.power.reported()  # the gateway holds the mode change: the node may go quiet
            self.link.listen(100)
        elif self.link.uart is not None and self.link.uart.any():
            self.link.listen(100)  # someone is talking (an installer's check): answer within a sample period
        return self._sleep(mode)

    def _sleep(self, mode):
        b = self.board
        nxt = self.sched.next_wake(b.time_ms() // 1000)
        ms = max(1000, (nxt * 1000) - b.time_ms())
        self.save_rtc()
        gc.collect()  # sleep with the garbage gone: the next wake starts from a tidy heap
        return ms, mode == "survival"

    def _sample(self, now):
        st = self.sched
        prev = self.last_sample
        if prev:
            closed = st.closes_interval(prev, now)
            if closed is not None:
                self._close_interval(closed)
        s = self.sensors.read()
        cfg = self.cfg
        q = [None] * _NQ
        ndvi = ci = None
        sw = agro.shortwave_w_m2(s.up[_CLEAR], cfg.shortwave_w_m2_per_count) if s.spectral_ok else None
        if sw is not None and sw > _LIGHT_MIN:
            agro.reflectance(s.down, s.up, cfg.spectral_cal, self.refl)
            ndvi = agro.ndvi(self.refl[_RED], self.refl[_NIR])
            ci = agro.chlorophyll_index(self.refl[_NIR], self.refl[_GREEN])
        canopy = None
        if s.ir_canopy_c is not None and s.ir_sky_c is not None:
            canopy = agro.canopy_temperature_c(s.ir_canopy_c, s.ir_sky_c, cfg.emissivity)
        q[0], q[1], q[2], q[3], q[4] = sw, ndvi, ci, canopy, s.ir_sky_c
        q[5], q[6], q[7] = s.air_c, s.rh_pct, s.pressure_pa
        for i in range(_NQ):
            self.stats.add(i, q[i])
        self.board.heap_mark()
        hour = agro.solar_hour(now, cfg.lon)
        self.daily.add_sample(now, hour, s.air_c, s.rh_pct, s.pressure_pa, canopy, sw, ndvi, ci, self.plan.sample_s)
        return q

    def _close_interval(self, start):
        st = self.stats
        n = 0
        for i in range(_NQ):
            if st.count(i) > n:
                n = st.count(i)
        buf = bytearray(_REC_LEN + _NQ * _Q_LEN)
        struct.pack_into(">IH", buf, 0, start, n)
        off = _REC_LEN
        nan = float("nan")
        for i in range(_NQ):
            c = st.count(i)
            if c:
                struct.pack_into(">Hfff", buf, off, c, st.mean(i), st.min(i), st.max(i))
            else:
                struct.pack_into(">Hfff", buf, off, 0, nan, nan, nan)
            off += _Q_LEN
        self.log.append(_K_INTERVAL, buf)
        st.reset()

    def _close_day(self, date_days):
        c = self.cfg
        d = self.daily.finish(date_days, c.gdd_base_c, c.gdd_cap_c, c.utc_offset_min)
        self.log.append(_K_DAILY, dumps(d))
        self.daily.reset()

    def _health(self, now):
        self.last_health = now
        if self.plan.sensors_on:
            self.sensors.poll_gnss()  # fix state for the fault flags (GNSS is off in survival)
        self.log.append(_K_HEALTH, dumps(self.health(now)))

    def health(self, now):
        b, s, lk = self.board, self.sensors, self.link
        smp = s.sample
        faults = []
        for name in s.faults:
            w = "fuel_gauge" if name == "solar" else name
            if w in FAULT_WORDS and w not in faults:
                faults.append(w)
        if not self.synced:
            faults.append("clock_unsynced")
        if self.last_tilt is None or self.wakes % 60 == 1:
            self.last_tilt = s.read_tilt()
        h = {
            "time": now,
            "power_mode": self.power.mode,
            "uptime_h": b.uptime_s() // 3600,
            "free_heap_kb": b.mem_free() // 1024,
            "log_fill_pct": int(self.log.fill_pct()),
            "log_pending": self.log.count_pending,
            "link": lk.stats(),
        }
        # every byte counts (4 KB a day): what is empty, zero or already said is left out
        if faults:
            h["faults"] = faults
        if self.clock_offset_ms:
            h["clock_offset_ms"] = max(-2147483647, min(2147483647, self.clock_offset_ms))
        if not self._cause_told:
            h["reset_cause"] = self.cause  # the first health after a reset says why
            self._cause_told = True
        if smp.battery_v is not None:
            h["battery_v"] = round(smp.battery_v, 3)
        if smp.soc_pct is not None:
            h["battery_soc"] = round(smp.soc_pct)
        if smp.solar_a is not None:
            h["solar_a"] = round(smp.solar_a, 3)
        if self.last_tilt is not None:
            h["tilt_deg"] = round(self.last_tilt, 1)
        return h

    # ---- the link ----
    def _hello(self):
        c = self.cfg
        msg = {"type": "hello", "fw_version": FW_VERSION, "hw": self.board.hw, "provisioned": c.provisioned,
               "reset_cause": self.cause, "uid": self.board.uid}
        if self.link.uart is not None:
            self.link.send(msg, keyless=not c.provisioned)

    def _sync_time(self):
        if self.link.uart is None:
            return
        delta = self.link.sync_time()
        if delta is None:
            return
        if self.board.time_ms() + delta < _SANE_EPOCH_MS:
            return  # an answer that would put the clock before 2024 is wrong, whoever sent it
        self.clock_offset_ms = delta
        if delta > 500 or delta < -500:
            self.board.step_clock_ms(delta)
        self.synced = True

    def _send_pending(self):
        """Deliver the oldest records, frame by frame; True when the log has nothing pending."""
        if self.link.uart is None:
            return False
        for _ in range(_MAX_FRAMES):
            msg, last_seq = self._next_frame()
            if msg is None:
                return True
            self.board.heap_mark()  # the busiest moment: a report built, its records read
            if not self.link.deliver(msg):
                return False  # stays in the log; the next report retries
            self.log.ack(last_seq)
        return False

    def _next_frame(self):
        """The oldest pending records as one message, and the seq of its last record.

        Consecutive interval records (up to one report period) travel as one report with
        at most one health and one daily record riding along; a health or daily record
        with no interval before it travels alone.
        """
        per = self.plan.report_min // self.plan.summary_min
        per = 4 if per < 1 or per > 4 else per
        iv, extra, last = [], {}, None
        for seq, kind, payload in self.log.pending(per + 2):
            if kind == _K_INTERVAL:
                start = struct.unpack_from(">I", payload, 0)[0]
                if extra or len(iv) >= per:
                    break
                if iv and start != struct.unpack_from(">I", iv[0], 0)[0] + 60 * self.plan.summary_min * len(iv):
                    break
                iv.append(payload)  # a fresh bytes object per record: no copy needed
            else:
                name = "health" if kind == _K_HEALTH else "daily"
                if name in extra or (not iv and extra):
                    break
                extra[name] = loads(bytes(payload))
            last = seq
            if not iv and extra:
                break
        if last is None:
            return None, None
        if not iv:
            for name in extra:
                extra[name]["type"] = name
                return extra[name], last
        msg = self._report(iv)
        for name in extra:
            if name == "health":
                extra[name].pop("time", None)  # the report's own interval times place it
            msg[name] = extra[name]
        return msg, last

    def _report(self, records):
        samples, stats = [], {}
        n = len(records)
        for j in range(n):
            samples.append(struct.unpack_from(">IH", records[j], 0)[1])
        for i in range(_NQ):
            mean, mn, mx, cnt = [], [], [], []
            any_value = False
            for j in range(n):
                c, m, lo, hi = struct.unpack_from(">Hfff", records[j], _REC_LEN + i * _Q_LEN)
                if c:
                    any_value = True
                    mean.append(m)
                    mn.append(lo)
                    mx.append(hi)
                else:
                    mean.append(None)
                    mn.append(None)
                    mx.append(None)
                cnt.append(c)
            if not any_value:
                continue
            q = {"mean": mean}
            if INTERVAL_QUANTITIES[i] in RANGED:
                q["min"] = mn
                q["max"] = mx
            if cnt != samples:
                q["count"] = cnt
            stats[INTERVAL_QUANTITIES[i]] = q
        return {"type": "report", "start": struct.unpack_from(">I", records[0], 0)[0],
                "interval_min": self.plan.summary_min, "samples": samples, "stats": stats}

    def _request(self, m):
        t = m["type"]
        if t == "diag_request":
            req_id, keyless = m["req_id"], m["auth"] != "hmac"

            def send(items, errors):
                r = {"type": "diag_response", "req_id": req_id, "items": items}
                if errors:
                    r["errors"] = errors
                self.link._reply(r, keyless)

            settings.use("diag").answer(self, m["items"], send)
            settings.unload("diag")
            return None
        if not self.cfg.provisioned:
            return None
        if t == "config_get":
            r = {"type": "config", "values": settings.use("config").get(self.cfg, m.get("keys"))}
            settings.unload("config")
            settings.unload("config_edit")
            return r
        if t == "config_set":
            applied, errors = settings.use("config").apply_set(self.cfg, m["values"], self.config_path)
            settings.unload("config")
            settings.unload("config_edit")
            if applied:
                self._plan(self.power.mode)
            r = {"type": "config", "values": applied}
            if errors:
                r["errors"] = errors
            return r
        return None

    # ---- memory that survives deep sleep ----
    def save_rtc(self):
        flags = 1 if self.synced else 0
        head = struct.pack(">HIIBBi", _RTC_MAGIC, self.last_sample, self.last_health,
                           self.power.to_int(), flags, self.link.state())
        self.board.rtc_write(head + self.stats.to_bytes() + self.daily.to_bytes())

    def _restore_rtc(self):
        if self.cause != "deepsleep":
            return
        data = self.board.rtc_read()
        hl = _RTC_HDR_LEN
        if not data or len(data) < hl:
            return
        magic, ls, lh, mode, flags, top = struct.unpack_from(">HIIBBi", data, 0)
        if magic != _RTC_MAGIC:
            return
        s1 = self.stats.size
        try:
            self.stats.load_bytes(data[hl : hl + s1])
            self.daily.load_bytes(data[hl + s1 :])
        except StateError:
            self.stats.reset()  # RTC memory garbage: start the interval afresh
            self.daily.reset()
            return
        self.last_sample, self.last_health = ls, lh
        self.power.from_int(mode)
        self._plan(self.power.mode)
        self.synced = bool(flags & 1)
        self.link.restore(top)

