"""The real board: ESP32-S3 with the two sensor heads, the GNSS and the gateway UART.

    board = Esp32S3Board()
    node = Node(board); ms, deep = node.wake(); board.deepsleep(ms) if deep else board.lightsleep(ms)

Pins (reference carrier board): I2C0 (up-looking head, climate, gauge) SDA 8 / SCL 9,
I2C1 (down-looking head) SDA 17 / SCL 18, UART1 gateway TX 43 / RX 44, UART2 GNSS TX 4 / RX 5.
Flash: littlefs on the "vfs" partition, mounted at /flash by boot.py. RTC slow memory keeps
the interval summaries across deep sleep; the watchdog resets a hung node after 60 s.
"""

import gc
import time

import esp32  # noqa: F401  (ESP32 port only: present on the board, checked by the import test)
import machine

_CAUSES = {
    machine.PWRON_RESET: "power_on",
    machine.HARD_RESET: "hard",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deepsleep",
    machine.SOFT_RESET: "soft",
}
_EPOCH_2000_MS = 946684800000  # the ESP32 port counts time from 2000-01-01


class _Uart:
    """machine.UART with the ``wait(ms)`` the link uses."""

    def __init__(self, uart):
        self.u = uart

    def any(self):
        return self.u.any()

    def readinto(self, buf, n=None):
        return self.u.readinto(buf) if n is None else self.u.readinto(buf, n)

    def write(self, b):
        return self.u.write(b)

    def wait(self, ms):
        t0 = time.ticks_ms()
        while not self.u.any():
            if time.ticks_diff(time.ticks_ms(), t0) >= ms:
                return False
            time.sleep_ms(2)
        return True


class Esp32S3Board:
    hw = "esp32s3"

    def __init__(self, wdt_ms=60000):
        self.uid = machine.unique_id()
        self.bus_up = machine.I2C(0, sda=machine.Pin(8), scl=machine.Pin(9), freq=100000)
        self.bus_down = machine.I2C(1, sda=machine.Pin(17), scl=machine.Pin(18), freq=100000)
        self.uart = _Uart(machine.UART(1, 115200, tx=43, rx=44, rxbuf=1024))
        self.gnss_uart = machine.UART(2, 9600, tx=4, rx=5, rxbuf=512)
        self.flash_root = "/flash"
        self._rtc = machine.RTC()
        self._wdt = machine.WDT(timeout=wdt_ms)
        self._cause = _CAUSES.get(machine.reset_cause(), "unknown")

    def reset_cause(self):
        return self._cause

    def time_ms(self):
        return time.time_ns() // 1000000 + _EPOCH_2000_MS

    def step_clock_ms(self, delta):
        t = (self.time_ms() + delta - _EPOCH_2000_MS) // 1000
        y, mo, d, hh, mm, ss, wd, _ = time.gmtime(t)
        self._rtc.datetime((y, mo, d, wd, hh, mm, ss, 0))

    def ticks_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def uptime_s(self):
        return time.ticks_ms() // 1000

    def rtc_read(self):
        return self._rtc.memory()

    def rtc_write(self, data):
        self._rtc.memory(data)

    def lightsleep(self, ms):
        self._wdt.feed()
        machine.lightsleep(ms)

    def deepsleep(self, ms):
        machine.deepsleep(ms)

    def feed_watchdog(self):
        self._wdt.feed()

    def heap_mark(self):
        pass

    def set_load_w(self, w):
        pass

    def mem_free(self):
        return gc.mem_free()

    def mem_alloc(self):
        return gc.mem_alloc()
