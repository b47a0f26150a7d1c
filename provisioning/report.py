"""What a provisioning run did, as a short table for the installer or JSON for machines.

    summary.render(Console())          # rich table; the first line says "N files copied"
    json.dumps(summary.as_dict())      # fieldline provision --json

Never holds key material: the key is "new" or "kept".
"""

from dataclasses import asdict, dataclass, field


@dataclass
class Summary:
    target: str
    device_id: int = 0
    name: str | None = None
    hw: str = ""
    uid: str | None = None
    fw_version: str = ""
    mpy: str = ""
    files_total: int = 0
    files_copied: int = 0
    files_repaired: int = 0
    files_removed: int = 0
    bytes_copied: int = 0
    manifest_sha256: str = ""
    config: str = "unchanged"  # written / unchanged / set over BLE
    key: str = "kept"  # new / kept
    registry: str = "unchanged"  # added / updated / unchanged
    registry_path: str = ""
    site: dict = field(default_factory=dict)
    verified: bool = False
    elapsed_s: float = 0.0
    notes: list = field(default_factory=list)

    def copied_text(self):
        if self.target.startswith("ble "):
            return "0 files copied (BLE: configuration only)"
        n = self.files_copied
        text = "%d file%s copied" % (n, "" if n == 1 else "s")
        extra = []
        if self.files_repaired:
            extra.append("%d repaired" % self.files_repaired)
        if self.files_removed:
            extra.append("%d removed" % self.files_removed)
        extra.append("%d on the board" % self.files_total)
        return "%s (%s)" % (text, ", ".join(extra))

    def as_dict(self):
        d = asdict(self)
        d["device_id_hex"] = "0x%08X" % self.device_id
        d["summary"] = self.copied_text()
        return d

    def render(self, console):
        from rich.table import Table

        verdict = "[bold green]VERIFIED[/]" if self.verified else "[bold red]NOT VERIFIED[/]"
        t = Table(title="%s  %s  node 0x%08X" % (verdict, self.target, self.device_id), show_header=False)
        t.add_column(style="bold")
        t.add_column()
        t.add_row("firmware", "%s  %s" % (self.fw_version, self.copied_text()))
        t.add_row("board", "%s uid %s, .mpy v%s" % (self.hw, self.uid or "?", self.mpy))
        t.add_row("device", "%d (0x%08X)%s" % (self.device_id, self.device_id,
                                                "  name %s" % self.name if self.name else ""))  # fmt: skip
        t.add_row("config", "%s; key %s" % (self.config, self.key))
        t.add_row("registry", "%s (%s)" % (self.registry_path, self.registry))
        s = self.site
        where = "%.6f, %.6f" % (s["lat"], s["lon"]) if s.get("lat") is not None else "?"
        parts = [p for p in (s.get("customer"), s.get("field")) if p]
        bnd = " boundary %d vertices" % len(s["boundary"]) if s.get("boundary") else ""
        t.add_row("site", "%s%s%s" % (" / ".join(parts) + " @ " if parts else "", where, bnd))
        if self.manifest_sha256:
            t.add_row("manifest", self.manifest_sha256[:16])
        for n in self.notes:
            t.add_row("note", n)
        t.add_row("time", "%.1f s" % self.elapsed_s)
        console.print(t)
        console.print(self.copied_text())
