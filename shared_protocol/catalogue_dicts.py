"""The message catalogue as dicts, for tools, tests and the docs (the node never loads this).

    catalogue.SCHEMAS[2]          # ("report", "start:u!,..."): catalogue builds it here on demand
    view("TYPE_IDS")["report"]    # 2

Built from the catalogue's two strings on every access; tools and tests can afford that.
"""

from shared_protocol import catalogue


def view(name):
    """SCHEMAS {id: (name, schema)}, SCHEMAS_BY_NAME, TYPE_NAMES {id: name}, TYPE_IDS {name: id}
    or TABLES {name: space-separated words}; AttributeError for anything else."""
    out = {}
    if name == "TABLES":
        for e in catalogue._TABLES[1:].split(";"):
            i = e.index(" ")
            out[e[:i]] = e[i + 1 :]
        return out
    if name == "SCHEMAS_BY_NAME":
        for n in ("LINK", "HEALTH", "DAILY"):
            out[n] = catalogue._find(catalogue._TYPES, n.lower())
        return out
    if name not in ("SCHEMAS", "TYPE_NAMES", "TYPE_IDS"):
        raise AttributeError(name)
    for tid in range(1, 13):
        _, n, s = catalogue.lookup(tid)
        if name == "TYPE_IDS":
            out[n] = tid
        else:
            out[tid] = n if name == "TYPE_NAMES" else (n, s)
    return out
