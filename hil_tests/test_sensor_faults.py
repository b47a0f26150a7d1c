"""A sensor that stops answering (I2C NACK) or sticks: the node keeps sampling everything else, says
which sensor failed in its health records, and never sends the dead sensor's quantity as if it were
measured. Virtual boards only: the chip models inject the fault at the bus (a real bench would need a
chip pulled off its socket).
"""

import pytest

from hil_tests.rig.field import health_records, intervals

pytestmark = pytest.mark.sim


@pytest.mark.virtual_only("makes a chip NACK on the virtual I2C bus")
@pytest.mark.bench(days=0.15, faults={"sensor_nack": "mlx_canopy"})
def test_a_canopy_thermometer_that_nacks_is_named_and_the_rest_keeps_sampling(bench):
    bench.run_to_end()
    reports = bench.of_type("report")
    iv = intervals(reports)
    bench.check(len(iv) >= 8, "intervals keep arriving with a dead canopy thermometer", ">= 8", len(iv))
    bench.check(all(n > 0 for _, n, _ in iv), "every interval sampled", "samples > 0", iv[:5])
    carried = sorted({q for m in reports for q in m["stats"]})
    bench.check("air_temperature" in carried, "air temperature still measured", "in the stats", carried)
    canopy = [m["stats"]["canopy_temperature"] for m in reports if "canopy_temperature" in m["stats"]]
    measured = [c for c in canopy if any(v is not None for v in c.get("mean", []))]
    bench.check(not measured, "no canopy temperature sent as measured", "none (or all None)", measured[:2])
    hs = health_records(bench.messages)
    named = [h for h in hs if "ir_canopy" in h["faults"]]
    bench.check(hs and len(named) == len(hs), "every health record names the failed sensor",
                "'ir_canopy' in faults of %d records" % len(hs), [h["faults"] for h in hs][:4])  # fmt: skip
    boots = bench.of_type("hello")
    bench.check(len(boots) == 1, "the node never restarted over the fault", "1 hello", len(boots))
