"""Status endpoint: a real aiohttp server on 127.0.0.1 and a real client; JSON in every answer."""

import asyncio
import json
import logging

import aiohttp
import pytest

from gateway.config import StatusConfig
from gateway.errors import ConfigError
from gateway.status import StatusServer

pytestmark = pytest.mark.sim  # starts a server (on loopback)

SNAP = {"gateway": "gw-1", "sources": [{"name": "north", "frames": 12}], "outbox": {"pending": 0}}
TOKEN = "s3cret-token"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def fetch(server, path="/status", headers=None, method="GET"):
    """(status, JSON body, headers) of one request to ``server``."""
    url = "http://127.0.0.1:%d%s" % (server.port, path)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.request(method, url, headers=headers) as r:
            assert r.content_type == "application/json"
            return r.status, await r.json(), r.headers


def test_status_returns_the_snapshot_as_json(capsys):
    calls = []

    def snapshot():
        calls.append(1)
        return dict(SNAP, calls=len(calls))

    async def main():
        server = StatusServer("127.0.0.1", 0, "", snapshot)
        port = await server.start()
        try:
            assert port > 0 and server.port == port
            first = await fetch(server)
            second = await fetch(server)
        finally:
            await server.stop()
        return first, second

    (s1, body1, _), (s2, body2, _) = run(main())
    assert (s1, s2) == (200, 200)
    assert body1 == dict(SNAP, calls=1) and body2 == dict(SNAP, calls=2)
    assert capsys.readouterr().out == ""  # no access log on stdout


def test_token_is_required_and_checked():
    async def main():
        async with StatusServer("127.0.0.1", 0, TOKEN, lambda: SNAP) as server:
            return [
                await fetch(server),
                await fetch(server, headers={"Authorization": "Bearer wrong"}),
                await fetch(server, headers={"Authorization": "Basic " + TOKEN}),
                await fetch(server, headers={"Authorization": "Bearer " + TOKEN + "x"}),
                await fetch(server, headers={"Authorization": "Bearer " + TOKEN}),
                await fetch(server, headers={"Authorization": "bearer " + TOKEN}),
                await fetch(server, "/nope"),
            ]

    answers = run(main())
    for status, body, headers in answers[:4] + answers[6:]:
        assert status == 401 and body["status"] == 401 and "Bearer" in body["error"]
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in str(body)
    assert [a[:2] for a in answers[4:6]] == [(200, SNAP), (200, SNAP)]


def test_unknown_path_and_method_are_json_errors():
    async def main():
        async with StatusServer("127.0.0.1", 0, TOKEN, lambda: SNAP) as server:
            auth = {"Authorization": "Bearer " + TOKEN}
            return await fetch(server, "/nope", auth), await fetch(server, "/status", auth, method="POST")

    (s404, b404, _), (s405, b405, h405) = run(main())
    assert (s404, b404) == (404, {"error": "not found", "status": 404})
    assert (s405, b405["status"]) == (405, 405) and "GET" in h405["Allow"]


def test_non_loopback_bind_needs_a_token():
    with pytest.raises(ConfigError) as info:
        StatusServer("0.0.0.0", 8780, "", lambda: SNAP)
    assert info.value.key == "status.token"
    assert info.value.expected == "a token when bind is not a loopback address"
    StatusServer("0.0.0.0", 8780, TOKEN, lambda: SNAP)  # constructed, never started
    for bind in ("127.0.0.1", "::1", "localhost"):
        StatusServer(bind, 0, "", lambda: SNAP)


def test_async_snapshot_from_config_and_failing_snapshot(caplog):
    async def snapshot():
        await asyncio.sleep(0)
        return SNAP

    def broken():
        raise RuntimeError("store closed")

    async def main():
        async with StatusServer.from_config(StatusConfig(port=0), snapshot) as good:
            ok = await fetch(good)
        async with StatusServer("127.0.0.1", 0, "", broken) as bad:
            failed = await fetch(bad)
        return ok, failed

    with caplog.at_level(logging.ERROR, logger="gateway.status"):
        (s_ok, body_ok, _), (s_bad, body_bad, _) = run(main())
    assert (s_ok, body_ok) == (200, SNAP)
    assert s_bad == 500 and "snapshot failed" in body_bad["error"] and "store closed" in caplog.text


def test_stop_frees_the_port_and_is_idempotent():
    async def main():
        server = StatusServer("127.0.0.1", 0, "", lambda: SNAP)
        port = await server.start()
        await server.stop()
        await server.stop()
        again = StatusServer("127.0.0.1", port, "", lambda: SNAP)
        assert await again.start() == port
        await again.stop()

    run(main())


REPORT = {"kind": "onboarding_report", "source": "node-7", "device": 7, "ts": "2026-06-01T10:40:00Z",
          "key": "node-7/onboarding_report/2026-06-01T10:40:00Z", "verdict": "PASS", "checks": []}  # fmt: skip


async def post(server, body, headers=None):
    url = "http://127.0.0.1:%d/records" % server.port
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.post(url, data=body, headers=headers) as r:
            assert r.content_type == "application/json"
            return r.status, await r.json()


def test_records_are_accepted_only_with_accept_a_known_kind_and_the_token():
    stored = []

    async def main():
        auth = {"Authorization": "Bearer " + TOKEN}
        async with StatusServer("127.0.0.1", 0, TOKEN, lambda: SNAP, accept=lambda r: stored.append(r) or True) as s:
            answers = [
                await post(s, json.dumps(REPORT), auth),
                await post(s, json.dumps(REPORT)),  # no token
                await post(s, json.dumps(dict(REPORT, kind="node_health")), auth),
                await post(s, json.dumps(dict(REPORT, key="")), auth),
                await post(s, "{not json", auth),
                await post(s, json.dumps([REPORT]), auth),
                await post(s, "x" * (70 * 1024), auth),
            ]
        async with StatusServer("127.0.0.1", 0, "", lambda: SNAP) as plain:  # no accept: no such resource
            answers.append(await post(plain, json.dumps(REPORT)))
        return answers

    ok, no_token, kind, key, not_json, a_list, too_big, absent = run(main())
    assert ok == (202, {"stored": REPORT["key"], "status": 202}) and stored == [REPORT]
    assert no_token[0] == 401
    assert kind[0] == 400 and "onboarding_report" in kind[1]["error"]
    assert key[0] == 400 and key[1]["error"].startswith("key:")
    assert not_json[0] == 400 and a_list[0] == 400 and too_big[0] == 413
    assert absent[0] in (404, 405)


def test_a_full_store_refuses_a_record_with_507():
    async def main():
        async with StatusServer("127.0.0.1", 0, "", lambda: SNAP, accept=lambda r: False) as s:
            return await post(s, json.dumps(REPORT))

    status, body = run(main())
    assert status == 507 and "full" in body["error"]
