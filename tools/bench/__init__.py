"""Benchmarks behind `fieldline bench ...`: each prints figures and ratios as JSON."""
