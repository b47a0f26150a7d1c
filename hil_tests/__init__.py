"""The hardware-in-the-loop suite: one suite, a real board on a serial port or a virtual node on a pty."""
