"""NMEA GNSS driver: published example sentences, framing faults, and the simulated receiver."""

from fieldnode.drivers.gnss import GNSS, days_from_civil
from sim.gnss import GNSSUart, civil_from_days
from sim.truth import Truth

# classic published examples; checksums 0x47 and 0x6A
GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
RMC = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"
RMC_EPOCH = 764426119  # 1994-03-23 12:35:19 UTC
LAT = 48 + 7.038 / 60
LON = 11 + 31.0 / 60
T0 = 1717243200  # 2024-06-01 12:00:00 UTC


def _nmea(body):
    cs = 0
    for ch in body:
        cs ^= ord(ch)
    return ("$%s*%02X\r\n" % (body, cs)).encode()


def _quiet(chunk=64):
    """A receiver that sends nothing by itself; the test injects the bytes."""
    uart = GNSSUart(Truth())
    uart.silent = True
    return uart, GNSS(uart, ticks_ms=lambda: 1000, chunk=chunk)


def _live(**kw):
    truth = Truth()
    truth.t, truth.lat, truth.lon, truth.alt_m = T0, 52.1234, -4.5678, 12.3
    uart = GNSSUart(truth, **kw)
    return truth, uart, GNSS(uart, ticks_ms=lambda: 1000)


def test_classic_gga():
    uart, gps = _quiet()
    uart.inject(GGA)
    assert gps.poll() == 1
    assert gps.fix and gps.quality == 1 and gps.sats == 8 and gps.hdop == 0.9
    assert abs(gps.lat - LAT) < 1e-9 and abs(gps.lon - LON) < 1e-9
    assert gps.alt_m == 545.4
    assert gps.utc_epoch is None  # time comes from RMC only


def test_classic_rmc():
    uart, gps = _quiet()
    uart.inject(RMC)
    assert gps.poll() == 1
    assert gps.fix and gps.utc_epoch == RMC_EPOCH and gps.utc_tick_ms == 1000
    assert abs(gps.lat - LAT) < 1e-9 and abs(gps.lon - LON) < 1e-9
    assert gps.utc_now(5500) == RMC_EPOCH + 4


def test_bad_checksum_rejected_and_counted():
    uart, gps = _quiet()
    uart.inject(RMC.replace(b"*6A", b"*6B"))
    uart.inject(GGA.replace(b"545.4", b"545.5"))
    uart.inject(GGA.replace(b"*47", b""))  # no checksum at all
    uart.inject(RMC.replace(b"*6A", b"*ZZ"))
    assert gps.poll() == 0
    assert gps.bad_checksum == 4 and gps.sentences == 0
    assert not gps.fix and gps.lat is None and gps.utc_epoch is None


def test_garbage_and_partial_lines_resynchronise():
    uart, gps = _quiet(chunk=7)  # sentences also split across reads
    uart.inject(b"\xff\xfe\x00junk\r\n")  # line noise before anything
    uart.inject(b"$GPGGA,123519,4807.0")  # cut off by the next '$'
    uart.inject(RMC)
    uart.inject(b"$GPGGA,12\xff3519\r\n")  # non-printable inside a sentence
    uart.inject(GGA)
    assert gps.poll() == 2
    assert gps.dropped == 2 and gps.bad_checksum == 0
    assert gps.fix and gps.utc_epoch == RMC_EPOCH and gps.alt_m == 545.4


def test_overlong_line_dropped():
    uart, gps = _quiet()
    uart.inject(b"$GPTXT," + b"A" * 100 + b"*00\r\n")
    uart.inject(GGA)
    assert gps.poll() == 1
    assert gps.overlong == 1 and gps.alt_m == 545.4


def test_south_west_other_talkers_and_other_types():
    uart, gps = _quiet()
    uart.inject(_nmea("GLGGA,000001.00,3352.12800,S,15112.50000,W,2,12,1.2,-3.5,M,20.0,M,,"))
    uart.inject(_nmea("GNGSA,A,3,01,02,03,,,,,,,,,,1.8,0.9,1.5"))
    uart.inject(_nmea("GNRMC,235959.50,A,3352.12800,S,15112.50000,W,0.0,,291224,,,A"))
    assert gps.poll() == 3
    assert abs(gps.lat + 33.868800) < 1e-9 and abs(gps.lon + 151.208333333) < 1e-8
    assert gps.alt_m == -3.5 and gps.quality == 2 and gps.sats == 12
    assert gps.utc_epoch == days_from_civil(2024, 12, 29) * 86400 + 86399


def test_malformed_fields_counted_not_applied():
    uart, gps = _quiet()
    uart.inject(_nmea("GPGGA,123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"))
    uart.inject(_nmea("GPRMC,123519,A,4807.038,Q,01131.000,E,022.4,084.4,230394,003.1,W"))
    uart.inject(_nmea("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,320394,003.1,W"))
    assert gps.poll() == 3
    assert gps.malformed == 3 and not gps.fix and gps.lat is None and gps.utc_epoch is None


def test_calendar():
    assert days_from_civil(1970, 1, 1) == 0
    assert days_from_civil(2000, 1, 1) * 86400 == 946684800
    assert days_from_civil(2024, 2, 29) == 1709251199 // 86400
    assert days_from_civil(2099, 12, 31) * 86400 + 86399 == 4102444799
    for days in range(0, 60000, 37):
        assert days_from_civil(*civil_from_days(days)) == days


def test_sim_against_truth():
    truth, uart, gps = _live()
    assert gps.poll() == 2
    assert gps.fix and gps.sats == 9 and gps.alt_m == 12.3
    assert abs(gps.lat - 52.1234) < 1e-4 and abs(gps.lon + 4.5678) < 1e-4
    assert gps.utc_epoch == T0
    truth.t += 1
    assert gps.poll() == 2 and gps.utc_epoch == T0 + 1
    assert gps.poll() == 0  # nothing new within the same second


def test_sim_no_fix():
    truth, uart, gps = _live(talker="GP")
    truth.gnss_fix = False
    assert gps.poll() == 2
    assert not gps.fix and gps.quality == 0 and gps.sats == 0
    assert gps.lat is None and gps.utc_epoch is None and gps.malformed == 0
    truth.gnss_fix = True
    truth.t += 1
    gps.poll()
    assert gps.fix and gps.utc_epoch == T0 + 1
    truth.gnss_fix = False
    truth.t += 1
    gps.poll()
    assert not gps.fix and abs(gps.lat - 52.1234) < 1e-4  # last fixed position kept


def test_sim_backlog_is_capped():
    truth, uart, gps = _live()
    for s in range(1000):
        truth.t = T0 + s
        uart.tick(truth.t)
        assert uart.any() <= uart.rxbuf
    assert uart.lost_bytes > 0
    gps.poll()
    assert gps.utc_epoch == T0 + 999 and gps.bad_checksum == 0
    truth.t += 3600  # an hour asleep: one pair, not 3600
    assert uart.any() < 200


def test_sim_corrupt_fraction():
    truth, uart, gps = _live(seed=7)
    uart.corrupt = 0.3
    for _ in range(100):
        truth.t += 1
        gps.poll()
        assert gps.lat is None or abs(gps.lat - 52.1234) < 1e-4
    assert 30 <= uart.corrupted <= 90, uart.corrupted
    assert gps.bad_checksum == uart.corrupted and gps.sentences == 200 - uart.corrupted
    assert gps.malformed == 0


def test_wait_fix_and_read_only_uart():
    truth, uart, _ = _live()
    truth.gnss_fix = False
    clock = [0]

    def sleep(ms):
        clock[0] += ms
        truth.t = T0 + clock[0] // 1000
        truth.gnss_fix = clock[0] >= 5000

    class ReadOnly:  # a UART without readinto
        any = uart.any
        read = uart.read

    gps = GNSS(ReadOnly(), ticks_ms=lambda: clock[0])
    assert gps.wait_fix(2000, sleep_ms=sleep) is False
    assert gps.wait_fix(10000, sleep_ms=sleep) is True
    assert 5000 <= clock[0] <= 6200 and gps.utc_epoch == truth.t
