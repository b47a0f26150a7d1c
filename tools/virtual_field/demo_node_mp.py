# Runs on MicroPython (unix port): a minimal node that speaks the wire format over a pty.
#   micropython demo_node_mp.py /dev/pts/N DEVICE_ID KEY_HEX REPORTS
# Sends hello, asks for the time, then REPORTS interval summaries, each resent until acked.
import sys
import time

from fieldnode.boards.virtual.uart import PtyUART

from shared_protocol import Deframer, ProtocolError, decode_frame, encode_frame


def main():
    path, dev, key, n = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), int(sys.argv[4])
    uart = PtyUART(path)
    keyring = {dev: key}
    deframer = Deframer()
    counter = [0]
    buf = bytearray(256)

    def send(msg, k):
        counter[0] += 1
        msg["device_id"] = dev
        msg["counter"] = counter[0]
        uart.write(encode_frame(msg, k))
        return counter[0]

    def wait_for(kind, timeout_ms):
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
            if not uart.wait(50):
                continue
            got = uart.readinto(buf)
            for wire in deframer.feed(buf[:got]):
                try:
                    m = decode_frame(wire, keyring)
                except ProtocolError as e:
                    print("node: dropped a bad frame:", e)
                    continue
                if m["type"] == kind:
                    return m
        return None

    send({"type": "hello", "fw_version": "0.1.0", "hw": "virtual", "provisioned": True}, key)
    t1 = time.time_ns() // 1000000
    send({"type": "time_sync", "t1_ms": t1}, key)
    ts = wait_for("time_sync", 2000)
    offset_ms = 0
    if ts:
        t4 = time.time_ns() // 1000000
        offset_ms = ((ts["t2_ms"] - t1) + (ts["t3_ms"] - t4)) // 2
    print("node: clock offset %d ms" % offset_ms)
    start = (time.time_ns() // 1000000 + offset_ms) // 1000 // 900 * 900
    for i in range(n):
        mean = 20.0 + i * 0.4
        msg = {
            "type": "report", "ack_req": True, "start": start + 900 * i, "interval_min": 15,
            "samples": [15],
            "stats": {"air_temperature": {"mean": [mean], "min": [mean - 0.3], "max": [mean + 0.2]},
                      "ndvi": {"mean": [0.71 + i * 0.002]}},
        }
        for attempt in range(4):
            c = send(msg, key)
            ack = wait_for("ack", 500 << attempt)
            if ack and c in ack["counters"]:
                print("node: report %d acked (counter %d, attempt %d)" % (i, c, attempt + 1))
                break
        else:
            print("node: report %d NOT acked" % i)
    uart.close()


main()
