"""The virtual board: the node's hardware on the MicroPython unix port, driven by the field model.

    board = VirtualBoard("/dev/pts/5", state_dir="/tmp/node1", seed=3, faults={"shade_up": 0.4})
    node = Node(board); board.deepsleep(node.wake())

Buses: ``bus_up`` holds the up-looking AS7341 (0x39), the sky MLX90614 (0x5B), SHT4x,
BMP390, LIS3DH, MAX17048 and INA219; ``bus_down`` the down-looking AS7341 and the canopy
MLX90614 (0x5A). Chip models read a Truth the FieldModel fills. Flash is a littlefs image
(``state_dir``/flash.img) on a FileBlockDev that can cut power at the N-th block write.

Time: the world runs on a simulated UTC clock; the node's clock is that plus
``clock_offset_s`` and ``clock_drift_ppm``. Deep sleep either advances the clock here
(``sleep_mode="advance"``, with ``speed`` = simulated/real time, 0 = as fast as possible) or
saves RTC memory and the world state and exits with EXIT_DEEPSLEEP, for the harness to
restart the process with reset cause "deepsleep" (``sleep_mode="exit"``).
"""

import gc
import json
import os
import sys
import time

from sim.chips.as7341 import AS7341Model, responsivity_for_unit
from sim.chips.bmp390 import BMP390Model
from sim.chips.ina219 import INA219Model
from sim.chips.lis3dh import LIS3DHModel
from sim.chips.max17048 import MAX17048Model
from sim.chips.mlx90614 import MLX90614Model
from sim.chips.sht4x import SHT4xModel
from sim.field import FieldModel
from sim.gnss import GNSSUart
from sim.i2c import SimI2C
from sim.truth import Truth

from fieldnode.boards.virtual.flash import FileBlockDev, mount
from fieldnode.boards.virtual.uart import PtyUART

EXIT_DEEPSLEEP = 75
EXIT_POWERCUT = 76
# chip names usable in sensor_nack=<chip> / stuck=<chip>
CHIPS = ("as7341_up", "as7341_down", "mlx_canopy", "mlx_sky", "sht4x", "bmp390", "lis3dh", "max17048", "ina219", "gnss")
BOARD_FAULTS = ("sensor_nack", "stuck", "clock_offset_s", "clock_drift_ppm", "powercut_at_write")


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class _LinkUART(PtyUART):
    """The pty UART; before each transmission it publishes the world's time for the harness's peer."""

    def __init__(self, path, board):
        super().__init__(path)
        self._board = board

    def write(self, data):
        self._board.publish_time()
        return super().write(data)


class VirtualBoard:
    hw = "virtual"

    def __init__(
        self,
        uart_path,
        state_dir="/tmp/fieldline-node",
        seed=1,
        faults=None,
        reset_cause="power_on",
        start_epoch=1780272000,  # 2026-06-01 00:00 UTC
        speed=0,
        sleep_mode="advance",
        lat=52.0,
        lon=5.0,
        alt_m=10.0,
        flash_blocks=64,
        flash_img=None,
        wall0=None,
    ):
        self.state_dir = state_dir
        self.speed = speed
        self.wall0 = wall0  # paced: world time = start + speed x (wall clock - wall0), shared by a field
        self.measure_heap = False
        self.heap_peak = 0
        self.sleep_mode = sleep_mode
        self._cause = reset_cause
        self.uid = bytes([0xF1, 0xE1, seed & 0xFF, (seed >> 8) & 0xFF, 0x5E, 0xED])
        try:
            os.mkdir(state_dir)
        except OSError:
            pass
        self._world_path = state_dir + "/world.json"
        self._rtc_path = state_dir + "/rtc.bin"
        self._clock_path = state_dir + "/clock"
        world = self._load_world()  # the world goes on across node resets and power cuts
        self.truth = Truth()
        self.field = FieldModel(lat, lon, alt_m, seed)
        self.faults = {}
        self._true_ms = start_epoch * 1000
        self._t0_ms = self._true_ms
        self._node_off_ms = 0
        if world:
            self._true_ms = world["t"]
            self._t0_ms = world["t0"]
            self._node_off_ms = world["off"]
            self.field.soc = world["soc"]
            self.field._t_last = world.get("tl")
        elif speed and wall0 is not None:
            # paced, first boot: a node started late (a loaded machine) powers on where the field's
            # timeline is, not in its past; else its first time sync would take the process's lag
            # for a clock error and step its clock by it. The harness sees the jump like a step.
            late = int((time.time() - wall0) * speed * 1000)
            if late > 500:
                print("@@STEP %d %d" % (self._true_ms, late))
                self._true_ms += late
        if self._cause != "deepsleep":
            self._rtc_clear()
        self._boot_ms = time.ticks_ms()
        self.bus_up = SimI2C()
        self.bus_down = SimI2C()
        t, ck = self.truth, self.ticks_ms
        self.chips = {
            "as7341_up": self.bus_up.attach(AS7341Model(t, "up", seed=seed, responsivity=responsivity_for_unit(seed))),
            "mlx_sky": self.bus_up.attach(MLX90614Model(t, "sky", addr=0x5B, seed=seed + 1)),
            "sht4x": self.bus_up.attach(SHT4xModel(t, seed=seed + 2, clock=ck)),
            "bmp390": self.bus_up.attach(BMP390Model(t, seed=seed + 3, clock=ck)),
            "lis3dh": self.bus_up.attach(LIS3DHModel(t, seed=seed + 4)),
            "max17048": self.bus_up.attach(MAX17048Model(t, seed=seed + 5)),
            "ina219": self.bus_up.attach(INA219Model(t, seed=seed + 6)),
            "as7341_down": self.bus_down.attach(
                AS7341Model(t, "down", seed=seed + 7, responsivity=responsivity_for_unit(seed + 7))
            ),
            "mlx_canopy": self.bus_down.attach(MLX90614Model(t, "canopy", addr=0x5A, seed=seed + 8)),
        }
        self.gnss_uart = GNSSUart(t, seed=seed + 9)
        for name in faults or {}:
            self.set_fault(name, faults[name])
        self.flash_dev = FileBlockDev(flash_img or state_dir + "/flash.img", 4096, flash_blocks)
        if self.faults.get("powercut_at_write"):
            self.flash_dev.arm(int(self.faults["powercut_at_write"]))
        gc.collect()
        a = gc.mem_alloc()
        self.flash_root = mount(self.flash_dev, "/flash")
        gc.collect()
        self.mount_bytes = gc.mem_alloc() - a  # littlefs's own state: firmware cost on a real board too
        self.uart = _LinkUART(uart_path, self) if uart_path else None
        self._update_world()

    # ---- faults ----
    def set_fault(self, name, value):
        if name in ("sensor_nack", "stuck"):
            if value not in CHIPS:
                raise ValueError("%s=%r: expected a chip, one of %s" % (name, value, ", ".join(CHIPS)))
            if value == "gnss":
                self.gnss_uart.silent = True
            elif name == "sensor_nack":
                self.chips[value].nack = True
            else:
                self.chips[value].stuck = True
        elif name in BOARD_FAULTS:
            value = float(value)
            if name == "clock_offset_s" and not self.faults.get(name):
                self._node_off_ms += int(value * 1000)
        else:
            self.field.set_fault(name, value)
        self.faults[name] = value

    # ---- clock ----
    def ticks_ms(self):
        """Monotonic milliseconds of the simulated world (chip conversion timing)."""
        return self._true_ms

    def true_time_ms(self):
        return self._true_ms

    def time_ms(self):
        drift = self.faults.get("clock_drift_ppm", 0)
        return self._true_ms + self._node_off_ms + int((self._true_ms - self._t0_ms) * drift * 1e-6)

    def step_clock_ms(self, delta):
        # for the harness: a node clock stepped forward skips the intervals it jumps over
        print("@@STEP %d %d" % (self.time_ms(), int(delta)))
        self._node_off_ms += int(delta)

    def sleep_ms(self, ms):
        self._true_ms += int(ms)

    def _advance(self, node_ms):
        drift = self.faults.get("clock_drift_ppm", 0)
        self._true_ms += int(node_ms / (1.0 + drift * 1e-6))
        if self.speed and self.wall0 is not None:
            # paced: every node of a virtual field (and its gateway) lives on one timeline. A node
            # that fell behind it (its link waits are real time: a lost ack costs speed x 0.4 s)
            # catches up by not sleeping, so it misses no sample, as a real node would not
            ahead = self.wall0 + (self._true_ms - self._t0_ms) / 1000.0 / self.speed - time.time()
            if ahead > 0:
                time.sleep_ms(int(ahead * 1000))
        elif self.speed:
            time.sleep_ms(int(node_ms / self.speed))
        self._update_world()

    def _update_world(self):
        self.field.update(self.truth, self._true_ms // 1000)
        self.gnss_uart.tick(self._true_ms // 1000)

    def publish_time(self):
        """Write the world's UTC time for the harness (the gateway's NTP-true clock)."""
        tmp = self._clock_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d\n" % (self._true_ms, self.time_ms()))
        os.rename(tmp, self._clock_path)  # atomic: the harness never reads half a line

    # ---- power, reset, memory ----
    def reset_cause(self):
        return self._cause

    def set_load_w(self, w):
        self.field.set_load_w(w)

    def feed_watchdog(self):
        pass

    def heap_mark(self):
        """With ``measure_heap`` set: collect and record the live heap (peak kept in ``heap_peak``)."""
        if self.measure_heap:
            gc.collect()
            a = gc.mem_alloc()
            if a > self.heap_peak:
                self.heap_peak = a
                if self.measure_heap == 2:
                    import micropython

                    micropython.mem_info(1)

    def mem_free(self):
        return gc.mem_free()

    def mem_alloc(self):
        return gc.mem_alloc()

    def uptime_s(self):
        return time.ticks_diff(time.ticks_ms(), self._boot_ms) // 1000

    def rtc_read(self):
        try:
            with open(self._rtc_path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def rtc_write(self, data):
        with open(self._rtc_path, "wb") as f:
            f.write(data)

    def _rtc_clear(self):
        if _exists(self._rtc_path):
            os.remove(self._rtc_path)

    def lightsleep(self, ms):
        """Sleep ``ms`` of node time with RAM kept (the app's objects live on)."""
        self._advance(ms)

    def deepsleep(self, ms):
        """Sleep ``ms`` of node time; the wake is a reset with cause deepsleep (RTC memory kept)."""
        self._cause = "deepsleep"
        if self.sleep_mode == "exit":
            self._advance_world_only(ms)
            self.save_world()
            sys.exit(EXIT_DEEPSLEEP)
        self._advance(ms)

    def _advance_world_only(self, node_ms):
        drift = self.faults.get("clock_drift_ppm", 0)
        self._true_ms += int(node_ms / (1.0 + drift * 1e-6))

    def save_world(self):
        w = {"t": self._true_ms, "t0": self._t0_ms, "off": self._node_off_ms, "soc": self.field.soc,
             "tl": self.field._t_last}
        tmp = self._world_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(w, f)
        os.rename(tmp, self._world_path)

    def _load_world(self):
        try:
            with open(self._world_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None
