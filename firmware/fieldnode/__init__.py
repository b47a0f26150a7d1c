"""Fieldline field node firmware (MicroPython): sample, summarise, store, send."""
import gc

gc.threshold(1024)  # while the firmware loads: garbage goes at once, code packs densely (Node sets its own)
FW_VERSION = "0.1.0"
