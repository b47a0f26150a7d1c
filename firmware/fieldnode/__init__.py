"""Fieldline field node firmware (MicroPython): sample, summarise, store, send."""

FW_VERSION = "0.1.0"
