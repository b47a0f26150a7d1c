"""Fieldline provisioning: flash, deploy, configure, pair and check a node."""
