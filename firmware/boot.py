# Runs first on the real board: mount the littlefs "vfs" partition at /flash.
import esp32
import vfs

_part = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="vfs")[0]
try:
    vfs.mount(vfs.VfsLfs2(_part), "/flash")
except OSError:
    vfs.VfsLfs2.mkfs(_part)
    vfs.mount(vfs.VfsLfs2(_part), "/flash")
