"""The gateway's local status endpoint: ``GET /status`` returns a snapshot of the service as JSON.

    server = StatusServer("127.0.0.1", 8780, token="", snapshot=engine.status, accept=engine.accept_record)
    port = await server.start(); ...; await server.stop()

``snapshot`` is a callable (plain or async) returning a JSON-able dict. With a token set, every
request needs ``Authorization: Bearer <token>`` (401 otherwise); a non-loopback ``bind`` needs a
token. Errors are JSON ``{"error": ...}``. Access lines go to the ``gateway.status.access`` logger,
never to stdout.

With ``accept``, ``POST /records`` takes one JSON record of a kind in ``POSTED_KINDS`` (an installer's
onboarding report, see provisioning/check.py) and hands it to ``accept(record)``, which stores it
durably for the uplinks (True: 202) or refuses it because the store is full (False: 507). A record
needs ``kind``, ``source``, ``ts`` and ``key`` (the upstream's idempotency key: a resend is dropped there).
"""

import hmac
import inspect
import json
import logging

from aiohttp import web

from gateway.config import is_loopback
from gateway.errors import ConfigError

log = logging.getLogger(__name__)
access_log = logging.getLogger(__name__ + ".access")
POSTED_KINDS = ("onboarding_report",)  # records others may put into the stream through POST /records
RECORD_MAX_BYTES = 64 * 1024


class StatusServer:
    """An aiohttp server with ``GET /status`` (and ``POST /records`` when given ``accept``)."""

    def __init__(self, bind, port, token, snapshot, accept=None):
        if not token and not is_loopback(bind):
            raise ConfigError("status.token", "a token when bind is not a loopback address", got=None)
        self.bind, self.port, self.snapshot, self.accept = bind, port, snapshot, accept
        self._token = (token or "").encode()
        self._runner = None

    @classmethod
    def from_config(cls, status_config, snapshot, accept=None):
        """From a config.StatusConfig."""
        c = status_config
        return cls(c.bind, c.port, c.token, snapshot, accept)

    async def start(self):
        """Listen; return the bound port (a free one when ``port`` is 0)."""
        app = web.Application(middlewares=[self._errors_as_json, self._authorize], client_max_size=RECORD_MAX_BYTES)
        app.router.add_get("/status", self._status)
        if self.accept is not None:
            app.router.add_post("/records", self._records)
        self._runner = web.AppRunner(app, access_log=access_log)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port)
        try:
            await site.start()
        except BaseException:
            await self.stop()
            raise
        self.port = self._runner.addresses[0][1]
        log.info("status endpoint on http://%s:%d/status%s", self.bind, self.port, " (token)" if self._token else "")
        return self.port

    async def stop(self):
        """Stop listening (safe to call twice)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.stop()

    @web.middleware
    async def _authorize(self, request, handler):
        if self._token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            given = given.strip().encode("utf-8", "replace")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._token):
                return _error(401, "a valid 'Authorization: Bearer <token>' header is required",
                              headers={"WWW-Authenticate": 'Bearer realm="fieldline-gateway"'})  # fmt: skip
        return await handler(request)

    @web.middleware
    async def _errors_as_json(self, request, handler):
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _error(e.status, e.reason.lower(), headers={k: v for k, v in e.headers.items() if k == "Allow"})

    async def _status(self, request):
        try:
            snap = self.snapshot()
            if inspect.isawaitable(snap):
                snap = await snap
            body = json.dumps(snap)
        except Exception:
            log.exception("status snapshot failed")
            return _error(500, "the status snapshot failed (see the gateway log)")
        return web.Response(text=body, content_type="application/json")

    async def _records(self, request):
        try:
            rec = await request.json()
        except ValueError:
            return _error(400, "expected one JSON object (a record)")
        why = record_problem(rec)
        if why:
            return _error(400, why)
        stored = self.accept(rec)
        if inspect.isawaitable(stored):
            stored = await stored
        if not stored:
            return _error(507, "the gateway's store is full; the record was not stored, send it again later")
        return web.json_response({"stored": rec["key"], "status": 202}, status=202)


def record_problem(rec):
    """Why ``rec`` cannot go into the stream through POST /records, or None."""
    if not isinstance(rec, dict):
        return "expected a JSON object (a record), got %s" % type(rec).__name__
    if rec.get("kind") not in POSTED_KINDS:
        return "kind: expected one of %s, got %r" % (", ".join(POSTED_KINDS), rec.get("kind"))
    for k in ("source", "ts", "key"):
        if not isinstance(rec.get(k), str) or not 0 < len(rec[k]) <= 200:
            return "%s: expected text of 1..200 characters, got %r" % (k, rec.get(k))
    return None


def _error(status, message, headers=None):
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)
