"""The virtual field: virtual nodes on pseudo-terminals and the CPython peers that talk to them."""
