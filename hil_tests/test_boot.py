"""Boot, identity and firmware version: what the node says when it starts and what its diagnostics answer.

Both targets. A real board is reset first (relay, or the USB bridge's RTS line on EN); a virtual
board has just been powered on by the bench fixture.
"""

import pytest

from hil_tests.rig.field import POWER_ON_CAUSES, fw_version

pytestmark = pytest.mark.sim


def _boot(bench):
    if not bench.is_virtual:
        bench.reset()
    return bench.expect("hello", timeout_s=60, what="the node sent no hello after it was powered up")


@pytest.mark.bench(days=0.25, real_s=0)
def test_boot_says_hello_with_identity_and_firmware_version(bench):
    hello = _boot(bench)
    want = fw_version()
    bench.check(hello.get("fw_version") == want, "the firmware version in the hello", want, hello)
    causes = ("power_on",) if bench.is_virtual else POWER_ON_CAUSES
    bench.check(hello.get("reset_cause") in causes, "the reset cause in the hello", causes, hello)
    bench.check(hello.get("provisioned") is True and hello.get("auth") == "hmac",
                "a provisioned node says hello with its key", "provisioned, hmac", hello)  # fmt: skip
    bench.check(hello["device_id"] in bench.board.keyring, "the hello's device id is the bench board's",
                sorted(bench.board.keyring), hello["device_id"])  # fmt: skip
    if bench.board.hw is not None:  # a real target named by its chip (--target esp32s3)
        bench.check(hello.get("hw") == bench.board.hw, "the board kind in the hello", bench.board.hw, hello.get("hw"))


@pytest.mark.bench(days=0.25, real_s=0)
def test_diagnostics_identity_firmware_and_clock(bench):
    hello = _boot(bench)
    items = bench.diag(["identity", "firmware", "clock", "log"])
    ident, fw, clock = items["identity"], items["firmware"], items["clock"]
    bench.check(ident["device_id"] == hello["device_id"] and ident["provisioned"] is True,
                "diagnostics identity", {"device_id": hello["device_id"], "provisioned": True}, ident)  # fmt: skip
    bench.check(ident["uid"] == bytes(hello["uid"]).hex(), "the unique id in identity and in the hello",
                bytes(hello["uid"]).hex(), ident["uid"])  # fmt: skip
    bench.check(fw["version"] == fw_version(), "diagnostics firmware version", fw_version(), fw)
    bench.check(fw["free_heap"] > 0, "diagnostics free heap", "> 0", fw)
    bench.check(clock["synced"] is True, "the node synced its clock with the gateway at boot", True, clock)
    r = next(m for m in bench.of_type("diag_response") if "clock" in (m.get("items") or {}))
    err_s = abs(clock["time_ms"] / 1000.0 - r["rx_time"])
    # the answer spends up to ~0.5 s of wall time on the link; a paced board (pty_board) lives `speed` x faster
    tol_s = 5.0 + 0.5 * getattr(bench.board.clock, "speed", 1.0)
    bench.figure("worst_clock_error_s", round(err_s, 3))
    bench.check(err_s < tol_s, "the node's clock against the gateway's when it answered", "within %.0f s" % tol_s,
                "%.3f s" % err_s)  # fmt: skip
    bench.check(items["log"]["corrupt"] == 0, "no corrupt record in the flash log", 0, items["log"])
