"""The results store: one SQLite file (WAL), one row per cell keyed by the hash of its configuration.

Each finished cell is written in one transaction, so a process killed at any moment leaves every earlier cell
intact and the one in flight absent; a re-run skips what is done. A store written by another schema version
is refused, never overwritten.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

SCHEMA = 1
_TABLE = """
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    kind TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    config TEXT NOT NULL,
    result TEXT,
    error TEXT,
    seconds REAL,
    wall REAL,
    device TEXT,
    versions TEXT,
    figure BLOB,
    finished REAL NOT NULL
)"""
COLUMNS = ("key", "model", "task", "kind", "seed", "status", "config", "result", "error", "seconds", "wall",
           "device", "versions", "figure", "finished")
_JSON = ("config", "result", "versions")


class Store:
    """``Store(path)`` opens (or creates) the results database at ``path``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise ValueError(f"store {str(self.path)!r} is not a robust results database ({e}); expected a "
                             "file written by `robust leaderboard run`, or a new path.") from None
        if tables and version != SCHEMA:
            self.conn.close()
            raise ValueError(f"store {str(self.path)!r} was written by schema version {version} and this robust "
                             f"writes version {SCHEMA}; refusing to touch it: use another output directory or "
                             "move the old store away.")
        self.conn.execute("PRAGMA journal_mode=WAL")  # only now: it rewrites the file header
        self.conn.execute("PRAGMA synchronous=NORMAL")
        if not tables:  # a new store; IMMEDIATE takes the write lock first, so two processes creating it queue up
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(_TABLE)
                self.conn.execute(f"PRAGMA user_version={SCHEMA}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done(self) -> set[str]:
        """Keys of the finished cells (failed ones are run again)."""
        return {r[0] for r in self.conn.execute("SELECT key FROM cells WHERE status = 'done'")}

    def put(self, row: dict) -> None:
        """Insert or replace one cell's row, in its own transaction."""
        row = {**row, "finished": row.get("finished") or time.time()}
        if missing := [c for c in ("key", "model", "task", "kind", "seed", "status", "config") if c not in row]:
            raise ValueError(f"row is missing {missing}; expected every cell column.")
        values = [json.dumps(row.get(c), sort_keys=True) if c in _JSON and row.get(c) is not None else row.get(c)
                  for c in COLUMNS]
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(f"INSERT OR REPLACE INTO cells ({', '.join(COLUMNS)}) "
                              f"VALUES ({', '.join('?' * len(COLUMNS))})", values)

    def rows(self, keys: set[str] | None = None) -> list[dict]:
        """Every row (or those of ``keys``), JSON columns decoded, in insertion order."""
        out = []
        for values in self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM cells ORDER BY rowid"):
            row = dict(zip(COLUMNS, values, strict=True))
            if keys is not None and row["key"] not in keys:
                continue
            for c in _JSON:
                row[c] = json.loads(row[c]) if row[c] is not None else None
            out.append(row)
        return out
