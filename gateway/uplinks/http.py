"""HttpUplink: POST each batch to an HTTP(S) endpoint (aiohttp); 2xx, or 409 "already have it", acknowledges it.

    up = HttpUplink("https://ingest.example/v1/batches", token="...", tls={"ca": "/etc/fieldline/ca.pem"})
    await up.start(); await up.send(batch)      # UplinkError names the status and the start of the body

The body is the batch document as the outbox holds it, with ``Content-Type: application/cbor``
(or ``application/json`` for a JSON document), plus ``Idempotency-Key: <batch.key>`` and, with a
``token``, ``Authorization: Bearer <token>``; a retried batch keeps its key, so the server can
answer 409 for one it already stored. Redirects are not followed (a redirected POST may lose its
body): a 3xx is an error like any other non-2xx. ``max_inflight`` requests share a connection pool.
"""

from urllib.parse import urlsplit

import aiohttp

from gateway.errors import ConfigError
from gateway.uplinks import UplinkStats, check_backoff, check_number, describe_tls_error, log, tls_context
from gateway.uplinks.base import Uplink

_BODY_CHARS = 200  # how much of an error response goes into the UplinkError


class HttpUplink(Uplink):
    """One HTTP(S) endpoint; see the module doc."""

    kind = "http"
    OPTIONS = ("url", "token", "timeout_s", "max_inflight", "tls")
    REQUIRED = {"url": "the http:// or https:// URL batches are POSTed to"}

    def __init__(
        self, url, token=None, timeout_s=10.0, max_inflight=4, tls=None, backoff_min_s=1.0, backoff_max_s=60.0
    ):
        self.url = _checked_url(url)
        if tls is not None and not self.url.startswith("https://"):
            raise ConfigError("uplinks.tls", "an https:// url (tls has no effect on http://)", got=self.url)
        self._ssl = tls_context(tls) if tls is not None else True  # True: the system's CAs
        self._token = token
        self.timeout_s = check_number(timeout_s, "timeout_s", 0.0, above=True)
        self.max_inflight = check_number(max_inflight, "max_inflight", 1, integer=True)
        self.backoff_min_s, self.backoff_max_s = check_backoff(backoff_min_s, backoff_max_s)
        self._session = None
        self._connected = False
        self._stats = UplinkStats(self.kind)

    async def start(self):
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_inflight, ssl=self._ssl)
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def send(self, batch):
        if self._session is None:
            raise self._stats.failed(batch, "not started")
        try:
            status, reason, body = await self._post(batch)
        except TimeoutError as e:
            self._connected = False
            raise self._stats.failed(batch, "no answer from %s within %g s" % (self.url, self.timeout_s)) from e
        except aiohttp.ClientError as e:
            self._connected = False
            raise self._stats.failed(batch, "POST %s failed: %s" % (self.url, _client_error(e))) from e
        self._connected = True
        self._check_status(batch, status, reason, body)
        self._stats.ok()

    async def stop(self):
        session, self._session = self._session, None
        self._connected = False
        if session is not None:
            await session.close()

    def state(self):
        return self._stats.as_dict(self._connected, url=self.url)

    async def _post(self, batch):
        headers = {"Content-Type": content_type(batch.payload), "Idempotency-Key": batch.key}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        async with self._session.post(self.url, data=batch.payload, headers=headers, allow_redirects=False) as resp:
            return resp.status, resp.reason, await resp.read()

    def _check_status(self, batch, status, reason, body):
        if 200 <= status < 300:
            return
        if status == 409:
            log.debug("http uplink: %s already had batch %s (409): acknowledged", self.url, batch.key)
            return
        excerpt = body.decode("utf-8", "replace")[:_BODY_CHARS]
        raise self._stats.failed(batch, "POST %s -> %d %s: %s" % (self.url, status, reason or "", excerpt))


def content_type(payload):
    """application/json for a JSON document, application/cbor for CBOR (what the outbox stores)."""
    return "application/json" if payload[:1] == b"{" else "application/cbor"


def _client_error(e):
    """An aiohttp error as text, saying "TLS" when the TLS layer refused."""
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return describe_tls_error(e.certificate_error) or str(e)
    if isinstance(e, aiohttp.ClientSSLError):
        return "TLS: %s" % e
    return str(e) or type(e).__name__


def _checked_url(url):
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("uplinks.url", "an http:// or https:// URL", got=url)
    return url
