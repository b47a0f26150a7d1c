"""Split a byte stream into frames at 0x00 delimiters (bounded memory, resynchronising).

d = Deframer()
for wire in d.feed(uart.read()): handle(decode_frame(wire, keyring))
"""

from shared_protocol.frame import MAX_WIRE


class Deframer:
    """Frames from a byte stream; oversized runs are dropped and counted (``oversized``).

    d = Deframer()
    for wire in d.feed(uart.read()): handle(wire)
    """

    def __init__(self, max_wire=MAX_WIRE):
        self.max_wire = max_wire
        self.buf = bytearray()
        self.dropping = False
        self.oversized = 0

    def feed(self, chunk):
        frames = []
        for b in chunk:
            if b == 0:
                if self.buf and not self.dropping:
                    frames.append(bytes(self.buf))
                self.buf = bytearray()
                self.dropping = False
            elif not self.dropping:
                self.buf.append(b)
                if len(self.buf) > self.max_wire:
                    self.oversized += 1
                    self.dropping = True
                    self.buf = bytearray()
        return frames
