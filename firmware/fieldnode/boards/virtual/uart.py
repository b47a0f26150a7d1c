"""The virtual board's UART: a pseudo-terminal path opened as a machine.UART look-alike.

    uart = PtyUART("/dev/pts/7")
    uart.write(frame); n = uart.readinto(buf)     # never blocks; 0/None when nothing waits

MicroPython's blocking stream reads loop until the buffer is full, so bytes are taken one
at a time while poll() says more are waiting: a real UART FIFO hands over what it has.
"""

import select


class PtyUART:
    def __init__(self, path):
        self.path = path
        self._f = open(path, "r+b")
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)
        self._one = bytearray(1)
        self.rx_bytes = 0
        self.tx_bytes = 0

    def any(self):
        return 1 if self._ready(0) else 0

    def _ready(self, timeout_ms):
        for _, ev in self._poll.ipoll(timeout_ms):
            if ev & (select.POLLHUP | select.POLLERR):
                return False
            return True
        return False

    def wait(self, timeout_ms):
        """Block up to ``timeout_ms`` for input; True when bytes wait."""
        return self._ready(timeout_ms)

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else nbytes
        i = 0
        one = self._one
        while i < n and self._ready(0):
            if not self._f.readinto(one):
                break
            buf[i] = one[0]
            i += 1
        self.rx_bytes += i
        return i or None

    def read(self, nbytes=64):
        buf = bytearray(nbytes)
        n = self.readinto(buf)
        return bytes(buf[:n]) if n else None

    def write(self, data):
        n = self._f.write(data)
        self.tx_bytes += n or 0
        return n

    def close(self):
        self._f.close()
