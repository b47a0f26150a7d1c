"""The board layer: the only code that knows the platform. Everything above uses this API.

    board = VirtualBoard(...)    # or Esp32S3Board()
    node = Node(board); ms, deep = node.wake(); board.deepsleep(ms) if deep else board.lightsleep(ms)

A board provides:
    hw, uid                      name of the hardware, unique id bytes
    bus_up, bus_down             machine.I2C-like buses (up-looking head, down-looking head)
    uart                         link to the gateway: any(), readinto(buf), write(b), wait(ms)
    gnss_uart                    UART of the GNSS receiver
    flash_root                   mount point of the littlefs file system holding config and log
    reset_cause()                one of power_on hard watchdog deepsleep soft brownout unknown
    time_ms()                    the node's clock: UTC epoch milliseconds (may be wrong until synced)
    ticks_ms(), uptime_s()       monotonic milliseconds (sensor timing), seconds since boot
    step_clock_ms(delta)         correct the node's clock (time sync)
    sleep_ms(ms)                 busy/light sleep (sensor conversion waits)
    rtc_read() / rtc_write(b)    memory that survives deep sleep (lost on power-on)
    lightsleep(ms)               sleep with RAM kept (between samples)
    deepsleep(ms)                sleep; the next wake is a reset with cause "deepsleep"
    feed_watchdog(), mem_free(), mem_alloc()
    heap_mark()                  # the app's busiest moments: benches record live heap there
    set_load_w(w)                the node's electrical load (used by the virtual board's battery)
"""
