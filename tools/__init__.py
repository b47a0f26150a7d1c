"""Fieldline field tools: CLI, virtual field, upstream, fleet views, benchmarks."""

__version__ = "0.1.0"
