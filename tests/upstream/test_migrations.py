"""Versioned migrations: a new store gets every step; an old one is upgraded with its data; a newer one is refused."""

import pytest

from upstream.backends import make_backend
from upstream.errors import StoreError
from upstream.schema import LATEST, MIGRATIONS, current_version, migrate
from upstream.store import open_store

T0 = 1780272000


def test_steps_are_numbered_in_order():
    assert [m[0] for m in MIGRATIONS] == list(range(1, LATEST + 1))


def test_a_new_store_is_at_the_latest_version(store_url):
    with open_store(store_url) as s:
        assert s.version == LATEST
        got = s.backend.execute("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in got] == list(range(1, LATEST + 1))
    with open_store(store_url) as s:  # opening again changes nothing
        assert s.backend.execute("SELECT COUNT(*) FROM schema_version")[0][0] == LATEST


def test_a_version_1_store_is_upgraded_with_its_data(store_url):
    b = make_backend(store_url)
    assert migrate(b, target=1) == 1
    assert "health_day" not in b.table_names()
    with b.transaction():
        b.execute("INSERT INTO devices (device, kind) VALUES ('node-7', 'node')")
        dev = b.execute("SELECT id FROM devices")[0][0]
        b.executemany(
            "INSERT INTO health (device_id, kind, ts, battery_soc, solar_a, power_mode)"
            " VALUES (?, 'node_health', ?, ?, ?, ?)",
            [(dev, T0 + 3600 * h, 90.0 - h, 0.1, "full" if h < 30 else "saver") for h in range(48)],
        )
    b.close()
    with open_store(store_url) as s:
        assert s.version == LATEST and current_version(s.backend) == LATEST
        days = s.backend.execute("SELECT day, n, soc_min, soc_last, saver_n FROM health_day ORDER BY day")
        assert days == [(T0 // 86400, 24.0, 67.0, 67.0, 0.0), (T0 // 86400 + 1, 24.0, 43.0, 43.0, 18.0)]
        assert s.backend.execute("SELECT COUNT(*) FROM reading_rows")[0][0] == 0  # step 3's view exists


def test_a_store_newer_than_this_code_is_refused(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "u.db")
    with open_store(url) as s:
        with s.transaction():
            s.backend.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'future', 0)",
                              (LATEST + 1,))  # fmt: skip
    with pytest.raises(StoreError, match="newer than this fieldline"):
        open_store(url)


def test_a_failed_step_rolls_back_and_says_which(tmp_path, monkeypatch):
    from upstream import schema

    url = "sqlite:///%s" % (tmp_path / "u.db")
    b = make_backend(url)
    migrate(b, target=1)
    broken = list(schema.MIGRATIONS)
    broken[1] = (2, "broken step", ["CREATE TABLE health_day (x INTEGER)", "THIS IS NOT SQL"], None)
    monkeypatch.setattr(schema, "MIGRATIONS", tuple(broken))
    with pytest.raises(StoreError, match="migration 2 \\(broken step\\) failed"):
        schema.migrate(b)
    assert current_version(b) == 1 and "health_day" not in b.table_names()
    b.close()


def test_bad_store_urls_say_what_is_expected():
    from upstream.errors import ConfigError

    with pytest.raises(ConfigError, match="sqlite:/// or postgresql://"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match="does not exist"):
        open_store("sqlite:////nonexistent/dir/u.db")
