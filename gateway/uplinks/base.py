"""The uplink contract: send one outbox batch upstream and return only once it is acknowledged.

    up = make_uplink({"kind": "mqtt", "host": "127.0.0.1", "port": 1883}, gateway_id="gw-1")
    await up.start(); await up.send(batch); await up.stop()

``send`` returns when the upstream acknowledged the batch (MQTT PUBACK at QoS 1, HTTP 2xx,
file written and fsynced) and raises UplinkError otherwise; the engine then backs off and
retries the same batch (same idempotency key), so upstream may see a batch twice, never zero
times. ``send`` may be awaited concurrently (up to ``max_inflight``): the outbox drains oldest
first at full speed after an outage.
"""

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class Batch:
    """One outbox row on its way upstream.

    ``key`` is the batch's idempotency key ("<gateway_id>:<seq>"); ``payload`` is the complete
    JSON document (UTF-8 bytes, see docs/gateway.md "Upstream batches"); ``count`` the number of
    stream items in it; ``seq`` the outbox sequence number (oldest first).
    """

    seq: int
    key: str
    payload: bytes
    count: int


class Uplink(abc.ABC):
    """One upstream. Subclasses: FileUplink, MqttUplink, HttpUplink (parallel names in uplinks/)."""

    kind = "base"
    max_inflight = 1

    @abc.abstractmethod
    async def start(self):
        """Connect (or open); must not raise for an upstream that is merely down (send will)."""

    @abc.abstractmethod
    async def send(self, batch):
        """Deliver ``batch``; return once acknowledged, raise UplinkError if not."""

    @abc.abstractmethod
    async def stop(self):
        """Disconnect cleanly (pending sends fail with UplinkError)."""

    @abc.abstractmethod
    def state(self):
        """A JSON-able dict: at least kind, connected (bool), sent_batches, failed_batches, last_error."""
