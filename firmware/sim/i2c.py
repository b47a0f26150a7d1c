"""A simulated I2C bus with the machine.I2C API; chip models answer at register level.

    bus = SimI2C()
    bus.attach(SHT4xModel(truth))           # a ChipModel with .addr
    raw = bus.readfrom_mem(0x39, 0x92, 1)   # OSError(ENODEV) for absent addresses

A transaction is a write (pointer/command + data) and/or a read; ``readfrom_mem`` is a
write of the register address followed by a repeated-start read, as on real hardware.
A model with ``nack`` set behaves like an absent or dead chip.
"""

ENODEV = 19
EIO = 5


class ChipModel:
    """Base of chip models. Subclasses implement ``on_write(data)`` and ``on_read(n)``.

    ``on_write`` gets every byte the master wrote in one transaction (the first is
    usually a register pointer or a command). ``on_read`` returns exactly ``n`` bytes.
    Fault knobs: ``nack`` (no ACK at all), ``stuck`` (model freezes its raw values),
    ``bad_crc`` (CRC/PEC bytes corrupted), ``garbage`` (answers physically impossible raw
    values with a valid CRC, as a wrong or broken chip would).
    """

    addr = 0

    def __init__(self):
        self.nack = False
        self.stuck = False
        self.bad_crc = False
        self.garbage = False

    def on_write(self, data):
        raise NotImplementedError

    def on_read(self, n):
        raise NotImplementedError


class SimI2C:
    """machine.I2C-compatible bus over ChipModel instances; counts transactions."""

    def __init__(self):
        self.chips = {}
        self.transactions = 0

    def attach(self, chip):
        self.chips[chip.addr] = chip
        return chip

    def _chip(self, addr):
        self.transactions += 1
        chip = self.chips.get(addr)
        if chip is None or chip.nack:
            raise OSError(ENODEV)
        return chip

    def scan(self):
        return sorted(a for a in self.chips if not self.chips[a].nack)

    def writeto(self, addr, buf, stop=True):
        self._chip(addr).on_write(bytes(buf))
        return len(buf)

    def readfrom(self, addr, nbytes, stop=True):
        data = self._chip(addr).on_read(nbytes)
        if len(data) != nbytes:
            raise OSError(EIO)
        return bytes(data)

    def readfrom_into(self, addr, buf, stop=True):
        data = self.readfrom(addr, len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._chip(addr).on_write(bytes([memaddr]) + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        chip = self._chip(addr)
        chip.on_write(bytes([memaddr]))
        data = chip.on_read(nbytes)
        if len(data) != nbytes:
            raise OSError(EIO)
        return bytes(data)

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        data = self.readfrom_mem(addr, memaddr, len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]
