"""Issue 5 done-when: a virtual node, an SDI-12 adapter with two probes, a Modbus bus with an
anemometer and a vane, and two RuuviTags on a fake BLE backend -- one stream, one grid.

Faults are injected in every third-party device mid-run; each is counted in its source's health
and recovered from, and the node's stream goes on complete meanwhile.
"""

import time

import pytest

from tools.virtual_field.farm import VirtualFarm
from tools.virtual_field.modbus_sim import ModbusBus
from tools.virtual_field.node import DAY, START
from tools.virtual_field.sdi12_sim import Sdi12Sim, SimProbe

pytestmark = pytest.mark.sim

SPEED = 400  # slow enough for SDI-12's real-time waits between polls
DAYS = 0.2


class Sdi12Extra:
    def __init__(self):
        self.sim = Sdi12Sim([SimProbe("0", seed=1), SimProbe("1", seed=2)], time_scale=0.01)

    def start(self):
        self.sim.start()

    def stop(self):
        self.sim.stop()

    def config_toml(self):
        values = ('[{ index = 0, quantity = "soil_water_content", coeffs = [-0.053, 3.87e-4, -1.2e-8], lo = 0.0, '
                  'hi = 0.6 }, { index = 1, quantity = "soil_temperature" }, '
                  '{ index = 2, quantity = "soil_bulk_ec", scale = 1e-4 }]')
        return "\n".join([
            "[[sources]]", 'kind = "sdi12"', 'name = "soil"', 'port = "%s"' % self.sim.slave_path,
            "interval_s = 900", "timeout_s = 0.5", "retries = 2", "retry_s = 120",
            "[[sources.probes]]", 'address = "0"', 'sensor = "bed1"', "crc = true", "values = " + values,
            "[[sources.probes]]", 'address = "1"', 'sensor = "bed2"', "concurrent = true", "values = " + values,
        ])


class ModbusExtra:
    def __init__(self):
        self.bus = ModbusBus(name="wind")

    def start(self):
        self.bus.start()

    def stop(self):
        self.bus.stop()

    def config_toml(self):
        return self.bus.config_toml(interval_s=120)


class BleExtra:
    """Two simulated RuuviTags heard by the gateway process through the fake bleak backend."""

    def __init__(self, farm_ref):
        self.farm_ref = farm_ref

    def start(self):
        pass

    def stop(self):
        pass

    def config_toml(self):
        farm = self.farm_ref[0]
        return "\n".join([
            "[[sources]]", 'kind = "ble"', 'name = "tags"', 'backend = "tools.virtual_field.ble_sim:SimScanner"',
            "all_ruuvi = true", "stale_s = 3600",
            "[sources.backend_args]", "tags = 2", "seed = 3", "corrupt_fraction = 0.05", "measure_every_s = 60.0",
            'clock = "%s"' % farm.clock.spec(),
        ])


def test_one_stream_carries_node_soil_wind_and_tags_through_faults(tmp_path):
    sdi, mb, ref = Sdi12Extra(), ModbusExtra(), []
    farm = VirtualFarm(tmp_path / "farm", seeds=(9,), days=DAYS, speed=SPEED, extras=[sdi, mb, BleExtra(ref)],
                       lateness_s=900)
    ref.append(farm)
    try:
        farm.start()
        time.sleep(DAYS * DAY / SPEED / 3)  # a third of the way: break every third-party device once
        sdi.sim.inject("0", "bad_crc", 1)
        sdi.sim.inject("1", "garbage", 1)
        sdi.sim.inject("0", "no_response", 3)
        mb.bus.inject(1, "crc", 2)
        mb.bus.inject(2, "timeout", 2)
        mb.bus.inject(2, "exception", 1, code=4)
        assert farm.wait_nodes(600) == [0], farm.node_log(0)[-1500:]
        time.sleep(1.0)
        st = farm.wait_drained(60)
        readings, _records, _batches = farm.received()
    finally:
        farm.stop()
    end = START + int(DAYS * DAY)
    by_series = {}
    for (src, sensor, q, ts, _rule, _rev), vals in readings.items():
        assert ts % 900 == 0, (src, sensor, q, ts)  # one grid for every source
        if vals[0][1]:  # not a gap row
            by_series.setdefault((src, sensor, q), []).append(ts)
    wanted = [("soil", "bed1", "soil_water_content"), ("soil", "bed2", "soil_temperature"),
              ("wind", None, "wind_speed"), ("wind", None, "wind_direction"),
              ("tags", None, "air_temperature"), ("tags", None, "relative_humidity"),
              (farm.source_of(9), "node", "air_temperature")]
    for src, sensor, q in wanted:
        series = [(k, v) for k, v in by_series.items() if k[0] == src and k[2] == q and (sensor in (None, k[1]))]
        assert series, "no %s %s readings; have %s" % (src, q, sorted(by_series)[:20])
        for k, cells in series:
            # recovered: the series still delivers in the last hour of the run, after the faults
            assert max(cells) >= end - 2 * 3600, (k, max(cells) - START)
    ble_sensors = {k[1] for k in by_series if k[0] == "tags"}
    assert len(ble_sensors) == 2, ble_sensors
    health = {s["name"]: s for s in st["sources"]}
    sdi_err, mb_err, ble = health["soil"]["errors"], health["wind"]["errors"], health["tags"]
    assert sdi_err.get("bad_crc") and sdi_err.get("garbage") and sdi_err.get("no_response"), sdi_err
    assert mb_err.get("crc") and mb_err.get("timeout") and any(k.startswith("exception") for k in mb_err), mb_err
    assert sum(ble["undecodable"].values()) > 0 and ble["decoded"] > 0, ble
    # nothing stalled meanwhile: the node's every interval is in the stream
    node_cells = set(by_series[(farm.source_of(9), "node", "air_temperature")])
    expected = set(range(START, end - 3 * 3600, 900))
    assert expected <= node_cells, sorted(expected - node_cells)[:5]
