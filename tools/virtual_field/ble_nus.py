"""A fake bleak client backend: a node's Nordic UART Service (NUS) carried over a pty (no radio).

    link = PtyLink(); node = board.node(link.slave_path)      # the virtual node's UART is the "radio"
    client = BleakClient(addr, backend=SimNusClient, links={addr: link})

``SimNusClient`` is a real ``bleak.backends.client.BaseBleakClient``: ``BleakClient(backend=...)``
builds it as it builds the BlueZ one. Connecting to an address not in ``links`` raises
BleakDeviceNotFoundError; ``nus=False`` offers a device without the UART service (a wrong
device). Writes to the RX characteristic go to the link; what the link delivers comes back as
TX notifications cut to the MTU (``mtu`` - 3 bytes each), as a BLE UART bridge does.
"""

import asyncio

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError

NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # host writes
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # node notifies
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"


class SimNusClient(BaseBleakClient):
    def __init__(self, address_or_ble_device, *, links=None, mtu=23, nus=True, **kwargs):
        kwargs.setdefault("disconnected_callback", None)
        kwargs.setdefault("timeout", 10.0)
        super().__init__(address_or_ble_device, **kwargs)
        self._links = {a.upper(): link for a, link in (links or {}).items()}
        self._mtu, self._nus = mtu, nus
        self._link = None
        self._task = None
        self.written = 0

    @property
    def name(self):
        return "fieldline-node"

    @property
    def mtu_size(self):
        return self._mtu

    @property
    def is_connected(self):
        return self._link is not None

    async def connect(self, pair, **kwargs):
        link = self._links.get(self.address.upper())
        if link is None:
            raise BleakDeviceNotFoundError(self.address, "simulated: device %s not in range" % self.address)
        self.services = self._gatt()
        self._link = link

    def _gatt(self):
        col = BleakGATTServiceCollection()
        uuid = NUS_SERVICE if self._nus else BATTERY_SERVICE
        svc = BleakGATTService(None, 10, uuid)
        col.add_service(svc)
        if self._nus:
            size = lambda: self._mtu - 3  # noqa: E731
            col.add_characteristic(BleakGATTCharacteristic(None, 11, NUS_RX, ["write", "write-without-response"],
                                                           size, svc))  # fmt: skip
            col.add_characteristic(BleakGATTCharacteristic(None, 13, NUS_TX, ["notify"], size, svc))
        return col

    async def disconnect(self):
        await self._stop_pump()
        self._link = None

    async def pair(self, *args, **kwargs):
        pass

    async def unpair(self):
        pass

    async def read_gatt_char(self, characteristic, **kwargs):
        raise BleakError("simulated: %s is not readable" % characteristic.uuid)

    async def read_gatt_descriptor(self, descriptor, **kwargs):
        raise BleakError("simulated: no descriptors")

    async def write_gatt_descriptor(self, descriptor, data):
        raise BleakError("simulated: no descriptors")

    async def write_gatt_char(self, characteristic, data, response):
        if self._link is None:
            raise BleakError("simulated: not connected")
        if characteristic.uuid != NUS_RX:
            raise BleakError("simulated: %s is not writable" % characteristic.uuid)
        if len(data) > (512 if response else self._mtu - 3):
            raise BleakError("simulated: %d bytes exceed the MTU" % len(data))
        self._link.write(bytes(data))
        self.written += len(data)

    async def start_notify(self, characteristic, callback, **kwargs):
        if characteristic.uuid != NUS_TX:
            raise BleakError("simulated: %s does not notify" % characteristic.uuid)
        self._task = asyncio.create_task(self._pump(callback))

    async def stop_notify(self, characteristic):
        await self._stop_pump()

    async def _pump(self, callback):
        link, step = self._link, self._mtu - 3
        while self._link is link:
            data = await asyncio.to_thread(link.read, 0.05)
            for i in range(0, len(data), step):
                callback(bytearray(data[i : i + step]))

    async def _stop_pump(self):
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
