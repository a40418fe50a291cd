"""The results store: one SQLite file (WAL), one row per cell keyed by the hash of its configuration.

Each finished cell is written in one transaction, so a process killed at any moment leaves every earlier cell
intact and the one in flight absent; a re-run skips what is done, and a failed attempt never replaces a done row.
Before computing a cell a run claims it (a lease: owner, host, pid and a heartbeat), so two runs on one store
share the work; a claim whose process died (same host) or whose heartbeat stopped (by the claimant's clock, or
unchanged for as long by the waiter's own) is taken over. Each run
records its plan (the names of its cells, by key), so that rendering reads only the store; the files a rendered
board wrote are recorded, so that re-rendering deletes only those. A store of another schema version or layout
is refused before anything is written to it; a store of an earlier version gains the new tables.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from robust.checks import InputError

SCHEMA = 4
HOST = socket.gethostname()
HEARTBEAT_SECONDS = 5.0  # how often a run renews its claims
STALE_SECONDS = 60.0  # a claim not renewed for this long belongs to a run that is gone
#: each table's columns and their SQL types, in order: the one statement of the schema (``_DDL``, ``LAYOUTS``)
_TABLES = {
    "cells": {"key": "TEXT PRIMARY KEY", "model": "TEXT NOT NULL", "task": "TEXT NOT NULL", "kind": "TEXT NOT NULL",
              "seed": "INTEGER NOT NULL", "status": "TEXT NOT NULL CHECK (status IN ('done', 'failed'))",
              "config": "TEXT NOT NULL", "result": "TEXT", "error": "TEXT", "seconds": "REAL", "wall": "REAL",
              "device": "TEXT", "versions": "TEXT", "figure": "BLOB", "finished": "REAL NOT NULL"},
    "claims": {"key": "TEXT PRIMARY KEY", "owner": "TEXT NOT NULL", "host": "TEXT NOT NULL",
               "pid": "INTEGER NOT NULL", "heartbeat": "REAL NOT NULL"},
    "outputs": {"path": "TEXT PRIMARY KEY", "written": "REAL NOT NULL"},
    "plans": {"id": "TEXT PRIMARY KEY", "names": "TEXT NOT NULL", "written": "REAL NOT NULL"},
    "squares": {"key": "TEXT PRIMARY KEY", "data": "BLOB NOT NULL"},  # a patch cell's detector crops (safetensors)
}
#: each table's CREATE statement, one column a line (as SQLite keeps it in the file)
_DDL = {table: f"\nCREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(f"    {c} {t}" for c, t in columns.items())
        + "\n)" for table, columns in _TABLES.items()}
COLUMNS = tuple(_TABLES["cells"])
#: the tables of each schema version and their columns: a store is ours only if it has exactly these
LAYOUTS = {version: {table: tuple(_TABLES[table]) for table in tables} for version, tables in (
    (1, ["cells"]), (2, ["cells", "claims", "outputs"]), (3, ["cells", "claims", "outputs", "plans"]),
    (4, list(_TABLES)))}
_JSON = ("config", "result", "versions")


def new_owner() -> str:
    """A claim owner id for one run: host, pid and a random part (two runs in one process differ)."""
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _alive(host: object, pid: object, heartbeat: object, now: float) -> bool:
    """Whether a claimant may still be computing: its heartbeat is recent and, on this host, its process exists. A
    row no run of ours could have written (a pid that is no process id, a heartbeat that is no time) is dead."""
    if not (isinstance(pid, int) and 0 < pid < 2 ** 22 and isinstance(heartbeat, (int, float))
            and math.isfinite(heartbeat)):  # 2 ** 22: Linux's pid_max; <= 0 would signal process groups
        return False
    if now - heartbeat > STALE_SECONDS:
        return False
    if host == HOST:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            return True
    return True


class Store:
    """The results database of a board: one SQLite file (WAL), one row per cell keyed by the hash of its configuration.

    Opening creates the file (and its folder) if needed, adds the tables an earlier schema version lacks, and retries
    while another process holds a lock, up to ``timeout``. Use it as a context manager, or ``close()`` it.

    Args:
        path: the database file (a board's ``results.sqlite``).
        timeout: seconds to wait for another process's lock.

    Raises:
        InputError: a file that is not a robust results database, or one of another schema version or layout
            (refused before anything is written to it).

    Examples:
        >>> from robust.runner.store import Store
        >>> with Store("results.sqlite") as store:
        ...     store.put({"key": "k1", "model": "mine", "task": "lavan-12pct", "kind": "attack", "seed": 0,
        ...                "status": "failed", "config": {}, "error": "model did not load"})
        ...     store.done(), [(r["key"], r["status"]) for r in store.rows()]
        True
        (set(), [('k1', 'failed')])
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0):
        self.path = Path(path)
        self.conn: sqlite3.Connection | None = None
        self._seen: dict[str, tuple[tuple, float]] = {}  # claims of other runs as first seen (row, monotonic time)
        deadline = time.monotonic() + timeout
        while True:  # SQLite's busy handler does not cover every lock (WAL recovery, the switch to WAL): retry
            try:
                self._open(timeout)
                return
            except sqlite3.OperationalError as e:
                if self.conn is not None:
                    self.conn.close()
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _open(self, timeout: float) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            with self.conn:  # one read transaction: another process creating the store cannot commit in between
                self.conn.execute("BEGIN")
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                layout = self._layout()
        except sqlite3.DatabaseError as e:
            if "locked" in str(e):
                raise
            raise InputError(f"store {str(self.path)!r} is not a robust results database ({e}); expected a "
                             "file written by `robust leaderboard run`, or a new path.") from None
        if layout and layout != LAYOUTS.get(version):
            self.conn.close()
            why = (f"was written by schema version {version} and this robust writes version {SCHEMA}"
                   if version not in LAYOUTS else f"has schema version {version} but not its tables and columns")
            raise InputError(f"store {str(self.path)!r} {why}; refusing to touch it: use another output directory "
                             "or move the old store away.")
        self.conn.execute("PRAGMA journal_mode=WAL")  # only now: it rewrites the file header
        self.conn.execute("PRAGMA synchronous=NORMAL")
        if version != SCHEMA or not layout:  # new (IMMEDIATE: two processes creating it queue up) or older
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                for ddl in _DDL.values():
                    self.conn.execute(ddl)
                self.conn.execute(f"PRAGMA user_version={SCHEMA}")

    def _layout(self) -> dict[str, tuple[str, ...]]:
        tables = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: tuple(r[0] for r in self.conn.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid", (t,)))
                for t in tables}

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done(self) -> set[str]:
        """Keys of the finished cells (failed ones are run again)."""
        return {r[0] for r in self.conn.execute("SELECT key FROM cells WHERE status = 'done'")}

    def put(self, row: dict, owner: str | None = None) -> bool:
        """Write one cell's row in its own transaction (and release ``owner``'s claim on it), with its ``squares``
        (a patch cell's detector crops, safetensors bytes) when it has them. A failed row never replaces a done one;
        returns whether the row was written."""
        row = {**row, "finished": row.get("finished") or time.time()}
        if missing := [c for c in ("key", "model", "task", "kind", "seed", "status", "config") if c not in row]:
            raise InputError(f"row is missing {missing}; expected every cell column.")
        values = [json.dumps(row.get(c), sort_keys=True) if c in _JSON and row.get(c) is not None else row.get(c)
                  for c in COLUMNS]
        update = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            written = self.conn.execute(
                f"INSERT INTO cells ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                f"ON CONFLICT(key) DO UPDATE SET {update} "
                "WHERE cells.status != 'done' OR excluded.status = 'done'", values).rowcount
            if written and row.get("squares") is not None:
                self.conn.execute("INSERT OR REPLACE INTO squares (key, data) VALUES (?, ?)",
                                  (row["key"], row["squares"]))
            if owner is not None:
                self.conn.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (row["key"], owner))
        return written > 0

    def claim(self, key: str, owner: str) -> str:
        """Claim the cell ``key`` for ``owner``: ``claimed``, ``done`` (finished meanwhile) or ``busy`` (another live
        run holds it). A claim whose run is gone is taken over."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if self.conn.execute("SELECT 1 FROM cells WHERE key = ? AND status = 'done'", (key,)).fetchone():
                return "done"
            held = self.conn.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE key = ?", (key,)).fetchone()
            now = time.time()
            if held is not None and held[0] != owner and _alive(held[1], held[2], held[3], now) \
                    and not self._frozen(key, held):
                return "busy"
            self.conn.execute("INSERT OR REPLACE INTO claims (key, owner, host, pid, heartbeat) VALUES (?, ?, ?, ?, ?)",
                              (key, owner, HOST, os.getpid(), now))
        return "claimed"

    def _frozen(self, key: str, held: tuple) -> bool:
        """Whether the claim ``held`` on ``key`` has gone unrenewed for STALE_SECONDS of this process's own clock:
        the bound that does not trust the claimant's clock (a heartbeat written in the future, forged or from a
        clock that jumped, would otherwise look fresh forever)."""
        first = self._seen.get(key)
        if first is None or first[0] != held:
            self._seen[key] = (held, time.monotonic())
            return False
        return time.monotonic() - first[1] > STALE_SECONDS

    def release(self, owner: str) -> None:
        """Drop every claim of ``owner`` (a run that stops, finished or interrupted)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def squares(self, keys: set[str]) -> dict[str, dict]:
        """The detector crops stored for the cells ``keys`` that have them: {key: {"clean": ..., "attacked": ...}}
        (uint8 N x C x s x s tensors, read as data by safetensors; nothing in them is executed)."""
        from safetensors.torch import load

        keys, out = sorted(keys), {}
        for i in range(0, len(keys), 500):  # only the rows asked for, in chunks under SQLite's variable limit
            chunk = keys[i:i + 500]
            rows = self.conn.execute(f"SELECT key, data FROM squares WHERE key IN ({', '.join('?' * len(chunk))})",
                                     chunk)
            out.update((k, load(bytes(data))) for k, data in rows)
        return out

    def outputs(self) -> set[str]:
        """The files (relative to the board folder) that the last render wrote."""
        return {r[0] for r in self.conn.execute("SELECT path FROM outputs")}

    def set_outputs(self, paths: set[str]) -> None:
        """Record the files a render wrote, replacing the previous render's list."""
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM outputs")
            self.conn.executemany("INSERT INTO outputs (path, written) VALUES (?, ?)", [(p, now) for p in paths])

    def set_plan(self, plan_id: str, names: dict[str, tuple[str, str]]) -> None:
        """Record a run's plan: ``names`` maps each cell key to its (model name, task name)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("INSERT OR REPLACE INTO plans (id, names, written) VALUES (?, ?, ?)",
                              (plan_id, json.dumps(names, sort_keys=True), time.time()))

    def plan(self, plan_id: str) -> dict[str, tuple[str, str]] | None:
        """The names recorded by ``set_plan`` under ``plan_id`` (None if no run recorded it)."""
        row = self.conn.execute("SELECT names FROM plans WHERE id = ?", (plan_id,)).fetchone()
        return None if row is None else {k: (m, t) for k, (m, t) in json.loads(row[0]).items()}

    def rows(self, keys: set[str] | None = None) -> list[dict]:
        """Every row (or those of ``keys``), JSON columns decoded, in insertion order."""
        rows = (dict(zip(COLUMNS, values, strict=True))
                for values in self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM cells ORDER BY rowid"))
        return [{**row, **{c: json.loads(row[c]) if row[c] is not None else None for c in _JSON}}
                for row in rows if keys is None or row["key"] in keys]


class Heartbeat:
    """A thread that renews ``owner``'s claims in the store at ``path`` every ``every`` seconds, with its own
    connection, while a run computes (``with Heartbeat(path, owner): ...``)."""

    def __init__(self, path: Path, owner: str, every: float = HEARTBEAT_SECONDS):
        self.path, self.owner, self.every = Path(path), owner, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="robust-heartbeat", daemon=True)

    def _beat(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            while not self._stop.wait(self.every):
                with contextlib.suppress(sqlite3.OperationalError):  # busy past the timeout: renew next beat
                    conn.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))
        finally:
            conn.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
