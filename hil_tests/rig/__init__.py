"""The bench rig the suite drives: boards (virtual or real), the link peer over pytest-embedded, relay, attenuator,
results. ``hil_tests/conftest.py`` builds them from the command line; tests get a ``bench`` (rig.bench.Bench)."""
