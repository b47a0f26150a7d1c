"""Sensor drivers: one chip per module, the bus passed in, typed errors (fieldnode.errors)."""
