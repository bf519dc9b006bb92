#!/usr/bin/env python3
"""What SQLite alone costs per archived message on this machine: the floor under any
change to the archive's code (docs/performance.md, "What SQLite alone costs").

Appends MESSAGES synthetic chat messages (100 pairs of accounts, a 300-byte stanza each) to
a fresh SQLite database in a temporary directory, in transactions of BATCH messages (one
prepared INSERT per row through Python's sqlite3 `executemany`), as the server's writer
batches them: WAL, synchronous=FULL (each commit syncs), a 64 MiB page cache, a checkpoint every
10,000 pages. Prints the process's CPU time (user + system) per message for each layout:

  server     the archive as migration 0008 makes it: two rows per message (the sender's
             and the recipient's archive), four indexes
  no-stamp   the same without the (owner_id, stamp) index
  two-bare   two rows per message, no index at all
  one-row    one row per message shared by both archives, with the indexes it needs
             (each side's archive in order and with a contact, the id)
  one-bare   one row per message, no index at all
  chunks     what a batch holds for one archive and one contact in one row (its messages one
             after another in a blob), with the indexes the server's layout has

Python's own overhead (a few tenths of a µs per row) is included in every figure alike.
Only the local file system is touched; the run is bounded by MESSAGES.

    python3 bench/archive-floor.py [MESSAGES] [BATCH]
"""

import os
import random
import resource
import sqlite3
import sys
import tempfile
import time

MESSAGES = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 8192

TWO_ROWS = """CREATE TABLE archive (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL, id TEXT NOT NULL, with_jid TEXT NOT NULL,
    with_resource TEXT NOT NULL DEFAULT '', outgoing BOOLEAN NOT NULL,
    stamp INTEGER NOT NULL, stanza TEXT NOT NULL);"""
ONE_ROW = """CREATE TABLE archive (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    from_owner INTEGER, to_owner INTEGER, id TEXT NOT NULL,
    from_jid TEXT NOT NULL, from_resource TEXT NOT NULL DEFAULT '',
    to_jid TEXT NOT NULL, to_resource TEXT NOT NULL DEFAULT '',
    stamp INTEGER NOT NULL, stanza TEXT NOT NULL);"""
CHUNKS = """CREATE TABLE archive (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL, with_jid TEXT NOT NULL, first_id TEXT NOT NULL,
    last_id TEXT NOT NULL, first_stamp INTEGER NOT NULL, last_stamp INTEGER NOT NULL,
    count INTEGER NOT NULL, messages BLOB NOT NULL);"""
SERVER_INDEXES = [
    "CREATE INDEX archive_owner_seq ON archive (owner_id, seq)",
    "CREATE INDEX archive_owner_with ON archive (owner_id, with_jid, seq)",
    "CREATE INDEX archive_owner_stamp ON archive (owner_id, stamp)",
    "CREATE UNIQUE INDEX archive_owner_id ON archive (owner_id, id)",
]

LAYOUTS = {
    "server": ("two", TWO_ROWS, SERVER_INDEXES),
    "no-stamp": ("two", TWO_ROWS, [i for i in SERVER_INDEXES if "stamp" not in i]),
    "two-bare": ("two", TWO_ROWS, []),
    "one-row": ("one", ONE_ROW, [
        "CREATE INDEX from_seq ON archive (from_owner, seq)",
        "CREATE INDEX to_seq ON archive (to_owner, seq)",
        "CREATE INDEX from_with ON archive (from_owner, to_jid, seq)",
        "CREATE INDEX to_with ON archive (to_owner, from_jid, seq)",
        "CREATE UNIQUE INDEX id ON archive (id)",
    ]),
    "one-bare": ("one", ONE_ROW, []),
    "chunks": ("chunk", CHUNKS, [
        "CREATE INDEX chunk_owner_seq ON archive (owner_id, seq)",
        "CREATE INDEX chunk_owner_with ON archive (owner_id, with_jid, seq)",
        "CREATE INDEX chunk_owner_stamp ON archive (owner_id, last_stamp)",
        "CREATE INDEX chunk_owner_id ON archive (owner_id, last_id)",
    ]),
}

INSERT = {
    "two": "INSERT OR IGNORE INTO archive (owner_id, id, with_jid, with_resource, outgoing, "
           "stamp, stanza) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "one": "INSERT OR IGNORE INTO archive (from_owner, to_owner, id, from_jid, from_resource, "
           "to_jid, to_resource, stamp, stanza) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "chunk": "INSERT INTO archive (owner_id, with_jid, first_id, last_id, first_stamp, "
             "last_stamp, count, messages) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}

STANZA = ('<message xmlns="jabber:client" type="chat" to="u{r}@localhost/bench" '
          'from="u{s}@localhost/bench" id="m{n}"><body>{body}</body>'
          '<request xmlns="urn:xmpp:receipts"/></message>')


def batches(shape):
    """The messages, cut in batches of rows for `shape`, made before the clock starts."""
    rng = random.Random(1)
    start_ms = 1_733_350_000_000
    out, rows = [], []
    for n in range(MESSAGES):
        pair = rng.randrange(100)
        s, r = 2 * pair, 2 * pair + 1
        stanza = STANZA.format(r=r, s=s, n=n, body="x" * 150)
        ms = start_ms + n // 30
        stamp = ms // 1000
        # Ids as the server makes them: milliseconds first, then random bits.
        ids = [f"{ms:012x}{rng.getrandbits(32):08x}" for _ in range(2)]
        if shape in ("two", "chunk"):
            rows.append((s + 1, ids[0], f"u{r}@localhost", "bench", 1, stamp, stanza))
            rows.append((r + 1, ids[1], f"u{s}@localhost", "bench", 0, stamp, stanza))
        else:
            rows.append((s + 1, r + 1, ids[0], f"u{s}@localhost", "bench",
                         f"u{r}@localhost", "bench", stamp, stanza))
        if (n + 1) % BATCH == 0:
            out.append(rows)
            rows = []
    if rows:
        out.append(rows)
    return [chunked(rows) for rows in out] if shape == "chunk" else out


def chunked(rows):
    """A batch's rows grouped by archive and contact, each group one row: its messages as
    length-prefixed records (id, resource, direction, stamp, stanza) in one blob."""
    groups = {}
    for owner, ident, with_jid, resource, outgoing, stamp, stanza in rows:
        groups.setdefault((owner, with_jid), []).append((ident, resource, outgoing, stamp, stanza))
    out = []
    for (owner, with_jid), messages in groups.items():
        blob = b"".join(
            b"%d:%s%d:%s%d%d:%d:%s" % (len(i), i.encode(), len(r), r.encode(), o, s,
                                       len(st), st.encode())
            for i, r, o, s, st in messages)
        out.append((owner, with_jid, messages[0][0], messages[-1][0], messages[0][3],
                    messages[-1][3], len(messages), blob))
    return out


def run(name, directory):
    shape, table, indexes = LAYOUTS[name]
    work = batches(shape)
    path = os.path.join(directory, f"{name}.sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "cache_size = -65536",
                   "wal_autocheckpoint = 10000"):
        db.execute("PRAGMA " + pragma)
    db.execute(table)
    for index in indexes:
        db.execute(index)
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    for rows in work:
        db.execute("BEGIN")
        db.executemany(INSERT[shape], rows)
        db.execute("COMMIT")
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall
    db.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"| {name} | {len(indexes)} | {cpu / MESSAGES * 1e6:.2f} | "
          f"{MESSAGES / wall / 1000:.1f} k |", flush=True)


def main():
    print(f"{MESSAGES} messages, {BATCH} per transaction, SQLite {sqlite3.sqlite_version}")
    print("| layout | indexes | CPU µs per message | messages/s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="archive-floor-") as directory:
        for name in LAYOUTS:
            run(name, directory)


if __name__ == "__main__":
    main()
