"""The results store (robust.runner.store): SQLite shared by processes, claims that expire, schema versions and
layouts it upgrades or refuses untouched, rows that a failure never overwrites."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robust.runner import Store, load_spec, parse_spec, plan, run_board, run_cells
from robust.runner import store as store_mod

RESNET = "zoo:digits-m/resnet"
NOISE = {"name": "noise", "attack": "noise-patch", "params": {"area": 0.08}}
SMALL = {"dataset": "digits-m", "samples": 20, "batch_size": 20, "models": [{"spec": RESNET, "name": "resnet"}],
         "attacks": [NOISE]}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_store_gains_the_plans_and_squares_tables(tmp_path, version):
    db = tmp_path / "results.sqlite"
    conn = sqlite3.connect(db)
    tables = [store_mod._DDL[t] for t in ("cells", "claims", "outputs", "plans")]
    for ddl in tables[:{1: 1, 2: 3, 3: 4}[version]]:
        conn.execute(ddl)
    conn.execute("INSERT INTO cells (key, model, task, kind, seed, status, config, finished) "
                 "VALUES ('k', 'm', 't', 'attack', 0, 'done', '{}', 1.0)")
    conn.execute(f"PRAGMA user_version={version}")
    conn.commit()
    conn.close()
    with Store(db) as store:
        assert store.done() == {"k"} and store.plan("p") is None
        store.set_plan("p", {"k1": ("m", "t")})
        assert store.plan("p") == {"k1": ("m", "t")}
    with Store(db) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA == 4
        assert store._layout() == store_mod.LAYOUTS[4]
        assert store.squares({"k"}) == {}


def test_store_of_another_version_is_refused_and_left_alone(write_spec, tmp_path):
    db = tmp_path / "out" / "results.sqlite"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE cells (key TEXT PRIMARY KEY, payload TEXT)")
    conn.execute("INSERT INTO cells VALUES ('a', 'old')")
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ValueError, match=r"schema version 99 .* refusing"):
        run_board(load_spec(write_spec(tmp_path / "board.toml", SMALL)), tmp_path / "out")
    assert db.read_bytes() == before
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "results.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="is not a robust results database"):
        run_board(load_spec(write_spec(tmp_path / "board.toml", SMALL)), tmp_path / "junk")


@pytest.mark.subprocess
def test_stores_opened_by_many_processes_at_once(tmp_path):
    """pytest-xdist workers and parallel boards open one store together: no 'database is locked'."""
    db = tmp_path / "shared" / "results.sqlite"
    code = ("import sys; from robust.runner import Store\n"
            "for i in range(20):\n"
            "    with Store(sys.argv[1]) as s:\n"
            "        s.put({'key': f'{sys.argv[2]}-{i}', 'model': 'm', 'task': 't', 'kind': 'attack', 'seed': i,\n"
            "               'status': 'done', 'config': {}})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), str(k)], stderr=subprocess.PIPE, text=True)
             for k in range(4)]
    errors = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    with Store(db) as store:
        assert len(store.rows()) == 80


def test_store_put_keeps_done_rows(tmp_path):
    row = {"key": "k", "model": "m", "task": "t", "kind": "attack", "seed": 0, "config": {}}
    with Store(tmp_path / "s.sqlite") as store:
        assert store.put({**row, "status": "done", "result": {"n": 1}})
        assert not store.put({**row, "status": "failed", "error": "gone"})
        assert store.put({**row, "status": "done", "result": {"n": 2}})  # a new result replaces the old one
        assert [(r["status"], r["result"]) for r in store.rows()] == [("done", {"n": 2})]


@pytest.mark.parametrize(("pid", "heartbeat"), [
    (None, 1e12),  # this live process's pid, a heartbeat 30,000 years ahead: forged, or a clock that jumped
    (2 ** 62, None), (-1, None), (0, None),  # pids no process has (-1 would signal every process we may signal)
    ("1", None), (None, "soon"),
])
def test_a_claim_that_is_not_renewed_is_taken_over_whatever_its_clock_says(tmp_path, monkeypatch, pid, heartbeat):
    import socket

    from robust.runner import store as store_module

    monkeypatch.setattr(store_module, "STALE_SECONDS", 0.6)  # the waiter's own bound, on its own clock
    spec = parse_spec(SMALL | {"attacks": [NOISE]})
    (cell,), failed = plan(spec)
    out = tmp_path / "out"
    run_cells([], [], out)
    with Store(out / "results.sqlite") as store:
        store.conn.execute("INSERT INTO claims VALUES (?, 'forged', ?, ?, ?)",
                           (cell.key, socket.gethostname(), os.getpid() if pid is None else pid,
                            time.time() if heartbeat is None else heartbeat))
    lines = []
    start = time.perf_counter()
    report = run_cells([cell], failed, out, poll=0.2, progress=lambda label, done, total: lines.append(label))
    assert report.ran == 1 and time.perf_counter() - start < 30
    assert all("taken over if its claim goes unrenewed" in x for x in lines if x.startswith("waiting"))


@pytest.mark.subprocess
@pytest.mark.slow  # two board processes racing on one store: 17 s on 2 cores
def test_two_processes_on_one_store_compute_each_cell_once(tmp_path):
    attacks = [{**NOISE, "name": f"noise-{a}", "params": {"area": a / 100}} for a in range(3, 9)]
    spec = tmp_path / "board.toml"
    spec.write_text(f'dataset = "digits-m"\nsamples = 200\nbatch_size = 100\nmodels = ["{RESNET}"]\n'
                    + "".join(f'[[attacks]]\nname = "{t["name"]}"\nattack = "noise-patch"\n'
                              f'params = {{ area = {t["params"]["area"]} }}\n' for t in attacks))
    cmd = [sys.executable, "-m", "robust", "leaderboard", "run", str(spec), "--out", str(tmp_path / "out"),
           "--no-render", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    reports = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    print("cells run by each process:", [r["ran"] for r in reports])
    assert sum(r["ran"] for r in reports) == len(attacks)  # without claims each would compute what it found missing
    conn = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    assert conn.execute("SELECT COUNT(*), SUM(status = 'done') FROM cells").fetchone() == (len(attacks), len(attacks))
    assert conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_a_store_with_our_version_but_another_layout_is_refused_untouched(tmp_path):
    db = tmp_path / "out" / "results.sqlite"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE cells (key TEXT PRIMARY KEY, other TEXT)")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ValueError, match="has schema version 2 but not its tables and columns"):
        run_board(parse_spec(SMALL), db.parent)
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()


def test_a_version_1_store_gains_the_new_tables_and_keeps_its_rows(tmp_path):
    from robust.runner.store import COLUMNS, LAYOUTS, SCHEMA

    db = tmp_path / "results.sqlite"
    conn = sqlite3.connect(db)
    conn.execute(f"CREATE TABLE cells ({', '.join(COLUMNS)})")
    conn.execute("INSERT INTO cells (key, status) VALUES ('k', 'done')")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with Store(db) as store:
        assert store.done() == {"k"} and store._layout() == LAYOUTS[SCHEMA]
