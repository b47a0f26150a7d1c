"""The virtual board's world: the field model and register-level chip models (MicroPython-clean)."""
