"""`fieldline fleet simulate|attention|customers|device` and `fieldline upstream import-devices|migrate|serve`."""

import json

from typer.testing import CliRunner

from upstream import cli as upstream_cli
from upstream import fleet_cli

END = "2026-06-06T00:00:00Z"


def test_simulate_then_attention_and_customers(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "fleet.db")
    runner = CliRunner()
    r = runner.invoke(fleet_cli.app, ["simulate", "--store", url, "--devices", "30", "--days", "4", "--faults",
                                      "silent:1,panel_covered:1", "--seed", "2", "--end", END, "--truth",
                                      str(tmp_path / "truth.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert {t["fault"] for t in truth} == {"silent", "panel_covered"}
    r = runner.invoke(fleet_cli.app, ["attention", "--store", url, "--json", "--now", END])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    got = {(row["device"], row["cause"]) for row in out["attention"]}
    assert {(t["device"], t["fault"]) for t in truth} <= got
    row = out["attention"][0]
    assert row["rank"] == 1 and row["customer"] and row["evidence_text"] and row["action"]
    r = runner.invoke(fleet_cli.app, ["attention", "--store", url, "--now", END, "--limit", "5"])
    assert r.exit_code == 0 and "Needs attention" in r.output
    r = runner.invoke(fleet_cli.app, ["customers", "--store", url, "--json", "--now", END])
    assert r.exit_code == 0 and sum(c["devices"] for c in json.loads(r.output)) == 30
    r = runner.invoke(fleet_cli.app, ["device", truth[0]["device"], "--store", url, "--json", "--now", END])
    assert r.exit_code == 0 and json.loads(r.output)["device"] == truth[0]["device"]
    r = runner.invoke(fleet_cli.app, ["device", "node-1", "--store", url, "--now", END])
    assert r.exit_code == 2 and "no node device" in r.output


def test_upstream_commands_fail_with_a_clear_message(tmp_path):
    runner = CliRunner()
    url = "sqlite:///%s" % (tmp_path / "u.db")
    r = runner.invoke(upstream_cli.app, ["migrate", "--store", url])
    assert r.exit_code == 0 and "schema version" in r.output
    bad = tmp_path / "d.csv"
    bad.write_text("device,lat\nnode-1,north\n")
    r = runner.invoke(upstream_cli.app, ["import-devices", str(bad), "--store", url])
    assert r.exit_code == 2 and "d.csv:2: lat: expected a number" in r.output
    good = tmp_path / "g.csv"
    good.write_text("device,customer\nnode-1,Acme\n")
    r = runner.invoke(upstream_cli.app, ["import-devices", str(good), "--store", url])
    assert r.exit_code == 0 and "imported 1 devices" in r.output
    r = runner.invoke(upstream_cli.app, ["serve", "--store", url])
    assert r.exit_code == 2 and "nothing to serve" in r.output
    r = runner.invoke(upstream_cli.app, ["serve", "--store", url, "--http", "0.0.0.0:0"])
    assert r.exit_code == 2 and "bearer token" in r.output
    r = runner.invoke(fleet_cli.app, ["attention", "--store", "mysql://x"])
    assert r.exit_code == 2 and "sqlite:///" in r.output
