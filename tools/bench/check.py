"""`check_s`: how long the installation check takes from its start to the verdict, on a virtual node.

    fig = run()          # {"check_s": 3.1, "check_setup_s": 1.2, ...}; merged into `fieldline bench provisioning`

Each run installs a fresh virtual node (the real firmware, speed 300: it listens for requests every
second of wall time, as the virtual field sets it up for checks) behind the installer port of a
frame proxy, with the real gateway and Mosquitto (``check_setup_s``: that setup, not part of a real
install check), then runs the whole check (19 checks: diagnostics, a 10-round-trip link burst, the
gateway's view and the upstream) and times it from opening the link to the verdict. ``check_s`` is
the median of ``runs``; ``check_verdicts`` lists each run's verdict (all PASS: a correct install).
The budget is 30 s (an installer waiting in the field).
"""

import statistics
import tempfile
import time

BUDGET_S = 30.0


def one_run(speed=300.0):
    """(seconds to the verdict, seconds of setup, verdict) of one check of a fresh virtual install."""
    from provisioning.check import CheckOptions, run_check, verdict
    from provisioning.checks_geo import Boundary
    from provisioning.checks_transport import open_link
    from provisioning.checks_upstream import GatewayClient
    from tools.virtual_field.install import VirtualInstall

    with tempfile.TemporaryDirectory(prefix="bench-check-") as work:
        t0 = time.monotonic()
        inst = VirtualInstall(work, speed=speed)
        try:
            inst.start()
            t1 = time.monotonic()
            o = CheckOptions(device_id=inst.device_id, boundary=Boundary(inst.boundary), manifest=inst.manifest(),
                             keyring={inst.device_id: inst.registry_key}, gateway=GatewayClient(inst.status_url),
                             upstream_probe=inst.upstream_has, clock=inst.clock, **inst.check_timing())  # fmt: skip
            with open_link("serial", inst.installer_path) as link:
                results = run_check(link, o)
            t2 = time.monotonic()
        finally:
            inst.stop()
    return t2 - t1, t1 - t0, verdict(results)


def run(runs=3, speed=300.0):
    times, setups, verdicts = [], [], []
    for _ in range(runs):
        t, s, v = one_run(speed)
        times.append(round(t, 2))
        setups.append(round(s, 2))
        verdicts.append(v)
    check_s = round(statistics.median(times), 2)
    return {
        "check_s": check_s,
        "check_s_runs": times,
        "check_setup_s": round(statistics.median(setups), 2),
        "check_verdicts": verdicts,
        "check_budget_s": BUDGET_S,
        "check_within_budget": check_s <= BUDGET_S,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
