"""The CSM dashboard: `fieldline fleet serve`, server-rendered pages over the store, with access control.

    dash = Dashboard("sqlite:///upstream.db", host="127.0.0.1", port=8080, token=None, users=load_users("u.toml"))
    await dash.start(); print(dash.url); ...; await dash.stop()      # or: with running(dash) as url: ...

Pages (upstream/dashboard_pages.py): ``/`` fleet overview, ``/attention`` the ranked list (``?customer=``),
``/customer/NAME``, ``/device/NAME`` (``?days=``), ``/field/NAME`` (``?days=``); JSON:
``/api/attention`` (the list and the customer rollup) and ``/api/device/NAME``. Nothing is fetched
from anywhere else: no script, CSS inline, plots are inline SVG, and the Content-Security-Policy
says so to the browser.

Access: with no token and no users the dashboard is open, so it binds only a loopback address
(ConfigError otherwise). With ``token`` (sees every customer) and/or ``users`` (each with a token
and the customers it may see, or every one), every request needs ``Authorization: Bearer <token>``
or the session cookie the ``/login`` form sets (HMAC-signed with a key made at start: a restart
signs everyone out). Without them: 401 (the login form for pages, JSON for ``/api/``). A customer,
device or field a user may not see answers 404, like one that does not exist, and is left out of
every list. Store calls run on one thread (the Store is not thread-safe), as in upstream/receiver.py.
"""

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass

from aiohttp import web

from gateway.config import is_loopback
from upstream import dashboard_pages as pages
from upstream.alerts import alert_history
from upstream.dashboard_data import DashboardData
from upstream.errors import ConfigError
from upstream.store import open_store

log = logging.getLogger("fieldline.upstream.dashboard")
COOKIE = "fieldline_session"
SESSION_S = 12 * 3600
MIN_TOKEN_CHARS = 16
TOKEN_USER = "token"  # who signed in with --token
MAX_DAYS = 90
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class User:
    name: str
    token: bytes = b""
    customers: frozenset | None = None  # None: every customer

    @property
    def sees_all(self):
        return self.customers is None

    def may_see(self, customer):
        return self.customers is None or customer in self.customers


OPEN = User("")  # nobody signed in, on an open (loopback, no token) dashboard
USER = web.RequestKey("user", User)  # who asks (set by the authorising middleware)
VIA_COOKIE = web.RequestKey("via_cookie", bool)  # signed in with the session cookie: offer "sign out"


def _check_token(token, key):
    if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(key, "a token of at least %d characters (e.g. python -c 'import secrets; print(secrets."
                               "token_urlsafe())')" % MIN_TOKEN_CHARS)  # fmt: skip
    return token.encode()


def load_users(path):
    """Users from a TOML file: ``[users.NAME]`` tables with ``token`` and ``customers`` (a list, or "*")."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError("--users", "a readable TOML users file", got="%s (%s)" % (path, e.strerror)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("--users", "valid TOML", got="%s: %s" % (path, e)) from None
    tables = doc.get("users")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError("%s: users" % path, "[users.NAME] tables with token and customers")
    out, tokens = [], set()
    for name, t in tables.items():
        key = "%s: users.%s" % (path, name)
        if not isinstance(t, dict) or set(t) - {"token", "customers"}:
            raise ConfigError(key, "a table with only 'token' and 'customers'", got=t if not isinstance(t, dict)
                              else sorted(set(t) - {"token", "customers"}))  # fmt: skip
        token = _check_token(t.get("token"), key + ".token")
        if token in tokens:
            raise ConfigError(key + ".token", "a token no other user has")
        tokens.add(token)
        c = t.get("customers")
        if c == "*":
            customers = None
        elif isinstance(c, list) and all(isinstance(x, str) and x for x in c):
            customers = frozenset(c)
        else:
            raise ConfigError(key + ".customers", 'a list of customer names, or "*" for every customer', got=c)
        out.append(User(name, token, customers))
    return out


class Access:
    """Who may come in: bearer tokens and signed session cookies. ``required`` False: an open dashboard."""

    def __init__(self, token=None, users=()):
        self.users = list(users)
        if token:
            if any(u.name == TOKEN_USER for u in self.users):
                raise ConfigError("--users", "no user named %r when --token is given (that is --token's)" % TOKEN_USER)
            if any(hmac.compare_digest(token.encode(), u.token) for u in self.users):
                raise ConfigError("--token", "a token no user of --users has")
            self.users.append(User(TOKEN_USER, _check_token(token, "--token"), None))
        self._key = secrets.token_bytes(32)

    @property
    def required(self):
        return bool(self.users)

    def by_token(self, given):
        """The user whose token is ``given`` (every token is compared, in constant time each), or None."""
        g = given.encode("utf-8", "replace")
        found = None
        for u in self.users:
            if hmac.compare_digest(g, u.token) and found is None:
                found = u
        return found

    def _sign(self, msg):
        return hmac.new(self._key, msg.encode(), hashlib.sha256).hexdigest()

    def issue(self, user, now=None):
        """A session cookie value for ``user``: name, expiry, HMAC."""
        name = base64.urlsafe_b64encode(user.name.encode()).decode().rstrip("=")
        msg = "%s.%d" % (name, int(now if now is not None else time.time()) + SESSION_S)
        return msg + "." + self._sign(msg)

    def by_session(self, value, now=None):
        msg, _, sig = (value or "").rpartition(".")
        name, _, expiry = msg.partition(".")
        if not sig or not hmac.compare_digest(sig.encode(), self._sign(msg).encode()):
            return None
        if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
            return None
        try:
            name = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except ValueError:
            return None
        return next((u for u in self.users if u.name == name), None)


class Dashboard:
    """See the module doc. ``store``: a store URL (opened and closed on the dashboard's store thread)."""

    def __init__(self, store, host="127.0.0.1", port=8080, token=None, users=(), now=None, refresh_s=60.0):
        self.access = Access(token, users)
        if not self.access.required and not is_loopback(host):
            raise ConfigError("--host", "a loopback address, or --token/--users to bind %s" % host, got=host)
        self.store_url, self.host, self.port = store, host, port
        self.now, self.refresh_s = now, refresh_s
        self.store = self.data = None
        self.url = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fieldline-dashboard")
        self._runner = None

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open(self):
        self.store = open_store(self.store_url)
        self.data = DashboardData(self.store, now=self.now, refresh_s=self.refresh_s)

    async def start(self):
        """Open the store and listen; returns the URL (a free port when ``port`` is 0)."""
        try:
            await self._run(self._open)
            await self._listen()
        except BaseException:
            await self.stop()
            raise
        shown = "[%s]" % self.host if ":" in self.host else self.host
        self.url = "http://%s:%d/" % (shown, self.port)
        log.info("dashboard on %s (%s)", self.url, "sign-in required" if self.access.required else "open, loopback")
        return self.url

    async def _listen(self):
        app = web.Application(middlewares=[self._headers, self._authorize], client_max_size=64 * 1024)
        app.router.add_get("/", self._page(lambda v, r: pages.overview(v)))
        app.router.add_get("/attention", self._page(lambda v, r: pages.attention_page(v, r.query.get("customer"))))
        app.router.add_get("/customer/{name:.+}", self._page(lambda v, r: pages.customer_page(v, _name(r))))
        app.router.add_get("/device/{name:.+}", self._page(lambda v, r: pages.device_page(v, _name(r), _days(r, 14))))
        app.router.add_get("/field/{name:.+}", self._page(lambda v, r: pages.field_page(v, _name(r), _days(r, 7))))
        app.router.add_get("/api/attention", self._api_attention)
        app.router.add_get("/api/device/{name:.+}", self._api_device)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        self._runner = web.AppRunner(app, access_log=logging.getLogger("fieldline.upstream.dashboard.access"))
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self):
        """Stop listening and close the store (safe to call twice)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self.store is not None:
            store, self.store = self.store, None
            await self._run(store.close)
        self._pool.shutdown(wait=True)

    # ---- middleware ----
    @web.middleware
    async def _headers(self, request, handler):
        try:
            resp = await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            resp = self._html(e.status, *pages.error_page(e.status, e.reason), None)
        except Exception as e:  # noqa: BLE001 - one failed page must not look like a dead server
            log.exception("dashboard: %s %s failed", request.method, request.path)
            resp = self._html(500, *pages.error_page(500, "This page failed (%s); see the dashboard's log."
                                                     % type(e).__name__), None)  # fmt: skip
        resp.headers.update(HEADERS)
        return resp

    @web.middleware
    async def _authorize(self, request, handler):
        request[USER], request[VIA_COOKIE] = OPEN, False
        if not self.access.required:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme:
            user = self.access.by_token(given.strip()) if scheme.lower() == "bearer" else None
        else:
            user = self.access.by_session(request.cookies.get(COOKIE))
            request[VIA_COOKIE] = True
        if user is None and request.path not in ("/login", "/logout"):
            return self._refuse(request)
        request[USER] = user
        return await handler(request)

    def _refuse(self, request):
        hdr = {"WWW-Authenticate": 'Bearer realm="fieldline-dashboard"'}
        if request.path.startswith("/api/"):
            return self._json(401, {"error": "sign in: 'Authorization: Bearer <token>' or the /login form"}, hdr)
        nxt = request.path_qs if request.method == "GET" else "/"
        return self._html(401, *pages.login_page(nxt), None, hdr)

    # ---- responses ----
    def _html(self, status, title, body, user, headers=None, logout=False):
        return web.Response(status=status, text=pages.layout(title, body, user, logout), content_type="text/html",
                            headers=headers)  # fmt: skip

    def _json(self, status, obj, headers=None):
        text = json.dumps(obj, default=_plain)
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)

    def _render(self, fn, user, request):
        """On the store thread: (status, title, body)."""
        try:
            view = pages.View(self.data, user)
            return (200, *fn(view, request))
        except pages.NotFound as e:
            return (404, *pages.error_page(404, str(e)))

    def _page(self, fn):
        async def handler(request):
            user = request[USER]
            status, title, body = await self._run(self._render, fn, user, request)
            return self._html(status, title, body, user, logout=request[VIA_COOKIE])

        return handler

    async def _api_attention(self, request):
        def work():
            view = pages.View(self.data, request[USER])
            customer = request.query.get("customer")
            return {"now": view.now, "attention": view.attention(customer), "customers": view.customers()}

        return self._json(200, await self._run(work))

    async def _api_device(self, request):
        name = _name(request)

        def work():
            view = pages.View(self.data, request[USER])
            i = view.device_index(name)
            out = view.fh.device(name)
            out["diagnoses"] = self.data.diagnoses(view.fh, i)
            out["open_alerts"] = [a for a in alert_history(self.store, name) if a["closed_at"] is None]
            return out

        try:
            return self._json(200, await self._run(work))
        except pages.NotFound as e:
            return self._json(404, {"error": str(e)})

    # ---- sign in / out ----
    async def _login_form(self, request):
        if not self.access.required:
            return _see_other("/")
        return self._html(200, *pages.login_page(_safe_next(request.query.get("next"))), None)

    async def _login(self, request):
        if not self.access.required:
            return _see_other("/")
        form = await request.post()
        nxt = _safe_next(form.get("next"))
        user = self.access.by_token(str(form.get("token", "")))
        if user is None:
            await asyncio.sleep(0.25)  # slow down guessing
            log.warning("dashboard: failed sign-in from %s", request.remote)
            return self._html(401, *pages.login_page(nxt, "Wrong token."), None)
        resp = _see_other(nxt)
        resp.set_cookie(COOKIE, self.access.issue(user), max_age=SESSION_S, path="/", httponly=True,
                        samesite="Strict", secure=request.secure)  # fmt: skip
        log.info("dashboard: %s signed in from %s", user.name, request.remote)
        return resp

    async def _logout(self, request):
        resp = _see_other("/login" if self.access.required else "/")
        resp.del_cookie(COOKIE, path="/")
        return resp


def _see_other(path):
    return web.Response(status=303, headers={"Location": path})


def _name(request):
    return request.match_info["name"]


def _days(request, default):
    try:
        return min(max(int(request.query.get("days", default)), 1), MAX_DAYS)
    except ValueError:
        return default


def _safe_next(path):
    """Only a local path (never //host or a scheme) to go to after signing in."""
    p = str(path or "/")
    ok = p.startswith("/") and not p.startswith("//") and p.isprintable() and not any(c in p for c in "\\ ")
    return p if ok else "/"


def _plain(v):
    if hasattr(v, "item"):
        return v.item()
    return str(v)


@contextlib.contextmanager
def running(dashboard, timeout_s=60):
    """Serve ``dashboard`` from a background thread (its own event loop) while the block runs; yields its URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fieldline-dashboard-loop", daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(dashboard.start(), loop).result(timeout_s)
    finally:
        try:
            asyncio.run_coroutine_threadsafe(dashboard.stop(), loop).result(timeout_s)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout_s)
            loop.close()
