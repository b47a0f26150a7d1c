"""Fieldline provisioning: flash, deploy, configure, pair and check a node (the installer's tools).

    summary = provision.provision_serial("/dev/ttyACM0", provision.Request(lat=52.1, lon=5.2))
    summary, board = provision.provision_virtual("work/node1", provision.Request(lat=52.1, lon=5.2))

`fieldline provision` (tools/provision_cli.py) drives these modules:

- transport: the board's raw REPL over a serial port (mpremote's SerialTransport), port checks;
- flash: the MicroPython runtime onto an ESP32-S3 with esptool, failures turned into advice;
- deploy: the firmware compiled to the board's .mpy version, only what changed copied, verified
  by SHA-256 hashes the board computes, ``/manifest.json`` written last;
- configure: ``/flash/config.json`` (identity, a fresh 32-byte key, site, settings) validated by
  the node's own loader, and the key in the gateway's registry (mode 0600);
- sites: the host-side site record (customer, field, position, field boundary) beside the registry;
- ble: configuration over BLE (Nordic UART Service) with the node's own config_set/config_get;
- provision: one run, in order, ending in a Summary (report); errors: one root, ProvisioningError.

The installation check (``fieldline check``) lives in check.py and checks_*.py.
"""
