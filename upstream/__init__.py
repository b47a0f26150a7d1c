"""Fieldline upstream: the receiver of the gateways' batches, the store, fleet health, alerts, a fleet simulator.

    store = open_store("sqlite:///upstream.db")          # upstream.store
    fh = assess(store); fh.attention[:10]                # upstream.health: the CSM's ranked list

Modules: store (+ backends/, schema, rollup, normalise, devices), receiver (MQTT + HTTP ingest),
health (+ diagnoses), alerts, simulate; CLIs: cli (``fieldline upstream``), fleet_cli
(``fieldline fleet``). See docs/csm-guide.md.
"""
