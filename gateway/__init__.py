"""Fieldline gateway: sources -> one timestamped stream -> durable outbox -> uplinks."""
