"""Node clocks as the gateway sees them: offset at each time sync, drift between syncs.

    clocks = NodeClocks()
    clocks.observe(dev, node_ms=msg["t1_ms"], gateway_s=time.time())   # each time sync request
    shift_s = clocks.shift(dev, node_t)    # subtract from a node timestamp to get UTC

A node steps its clock to the gateway's at every sync, so between two syncs its error grows
from zero at the drift rate; the error seen at a sync (its t1 against the gateway's clock)
divided by the time since the previous sync is that rate. A timestamp the node made t
seconds after its last sync is corrected by rate x t. Until two syncs were seen no drift is
assumed. ``state()``/``restore()`` keep the model across gateway restarts.
"""


class NodeClocks:
    def __init__(self, max_rate=500e-6):
        self.max_rate = max_rate  # |drift| beyond this (500 ppm) is a step, not drift: ignored
        self.last = {}  # device -> [gateway time of the last sync, drift rate s/s, error at it s, syncs]

    def observe(self, device, node_ms, gateway_s):
        """A time sync request: the node's clock read ``node_ms`` when the gateway's read ``gateway_s``."""
        err = node_ms / 1000.0 - gateway_s
        m = self.last.get(device)
        rate = m[1] if m else 0.0
        if m and gateway_s - m[0] > 600:
            r = err / (gateway_s - m[0])
            if abs(r) <= self.max_rate:
                rate = r
        self.last[device] = [gateway_s, rate, err, (m[3] + 1) if m else 1]
        return err

    def synced(self, device):
        return device in self.last

    def shift(self, device, node_t):
        """Seconds to subtract from node time ``node_t`` (0 without a model)."""
        m = self.last.get(device)
        if m is None or not m[1]:
            return 0.0
        dt = node_t - m[0]
        return m[1] * dt if dt > 0 else 0.0

    def describe(self, device):
        m = self.last.get(device)
        if m is None:
            return None
        return {"last_sync": m[0], "drift_ppm": round(m[1] * 1e6, 2), "offset_at_sync_s": round(m[2], 3), "syncs": m[3]}

    def state(self):
        return {str(d): v for d, v in self.last.items()}

    def restore(self, st):
        for d, v in (st or {}).items():
            self.last[int(d)] = list(v)
