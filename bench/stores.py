"""Where a benchmark's messages live: the same steps on SQLite and on PostgreSQL.

A store hands each scenario a database of its own (empty, or a copy of a cached pre-filled
one), gives the DATABASE_URL the service takes for it, and reads what is stored with the
store's own client (Python's sqlite3, or psql), so the checks look at the rows themselves, not
at the service's answers. The SQL the benchmarks read with is plain enough for both.

Cached pre-filled databases: on SQLite, files in bench/.cache/ (`<kind>-<rows>-<key>.db`); on
PostgreSQL, databases kept in the benchmarks' own cluster (`<kind>_<rows>_<key>`, see
pgcluster.py). `key` hashes the schema, so a changed schema builds them again.

Stdlib only (Python 3.11+).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator

import pgcluster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STORES = ("sqlite", "postgres")

# fill(url, scratch folder) loads a new database through the service; returns a summary to keep
# with the cached database (or None).
Fill = Callable[[str, Path], "str | None"]


def open_store(name: str, cache: Path) -> "SqliteStore | PostgresStore":
    return SqliteStore(cache) if name == "sqlite" else PostgresStore(cache)


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


# ---------------------------------------------------------------------------------------------
# SQLite


class SqliteDatabase:
    """One SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path.resolve()}"  # an absolute path gives sqlite:////...
        self.shown = str(path.relative_to(HERE)) if path.is_relative_to(HERE) else str(path)

    def rows(self, query: str) -> Iterator[tuple]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            yield from conn.execute(query)
        finally:
            conn.close()

    def one(self, query: str):
        return next(self.rows(query))[0]

    def discard(self) -> None:
        """Nothing to do: the file lives in the run's folder, removed with it."""

    def where_kept(self) -> str:
        return self.shown

    def counters(self) -> dict[str, int]:
        """The size of the write-ahead log file now."""
        wal = self.path.with_name(self.path.name + "-wal")
        return {"wal_file_bytes": wal.stat().st_size if wal.exists() else 0}

    @staticmethod
    def slice_note(before: dict[str, int], after: dict[str, int]) -> str:
        return f"WAL file {mib(after['wal_file_bytes'])} at the end"


class SqliteStore:
    name = "sqlite"
    # The store's writer is the thread that writes the most bytes (WAL appends, checkpoints).
    writer_thread = None
    writer_waits_on = "disk"
    writer_bytes_counted = True

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    def __enter__(self) -> "SqliteStore":
        return self

    def __exit__(self, *exc) -> None:
        pass

    @staticmethod
    def schema() -> bytes:
        return (ROOT / "schema.sql").read_bytes()

    def describe(self) -> list[str]:
        return ["store: SQLite, a file of its own (the service's settings: WAL, "
                "synchronous=FULL)"]

    def _cached_path(self, kind: str, rows: int, key: str) -> Path:
        return self.cache / f"{kind}-{rows}-{key}.db"

    def cached(self, kind: str, rows: int, key: str) -> SqliteDatabase | None:
        path = self._cached_path(kind, rows, key)
        return SqliteDatabase(path) if path.exists() else None

    def summary(self, db: SqliteDatabase) -> str | None:
        report = db.path.with_suffix(".import.txt")
        return report.read_text().strip() if report.exists() else None

    def build(self, kind: str, rows: int, key: str, fill: Fill) -> SqliteDatabase:
        path = self._cached_path(kind, rows, key)
        work = self.cache / f"{kind}-{rows}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        db = work / "app.db"
        summary = fill(SqliteDatabase(db).url, work)
        if summary is not None:
            path.with_suffix(".import.txt").write_text(summary + "\n")
        os.replace(db, path)
        shutil.rmtree(work, ignore_errors=True)
        return SqliteDatabase(path)

    def fresh(self, folder: Path, label: str, template: SqliteDatabase | None) -> SqliteDatabase:
        db = folder / "app.db"
        if template:
            shutil.copyfile(template.path, db)
        return SqliteDatabase(db)

    def load_marks(self) -> dict:
        """No server: the store's work is in the service's own figures."""
        return {}

    def load_notes(self, before: dict, after: dict, seconds: float, rows: int) -> list[str]:
        return []


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresDatabase:
    """One database in the benchmarks' own cluster."""

    def __init__(self, cluster: pgcluster.Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.url = cluster.url(name)
        self.shown = cluster.shown_url(name)

    def rows(self, query: str) -> Iterator[tuple]:
        return self.cluster.rows(query, self.name)

    def one(self, query: str):
        return self.cluster.one(query, self.name)

    def discard(self) -> None:
        self.cluster.drop(self.name)

    def where_kept(self) -> str:
        return f"database {self.name} in {self.cluster.shown_path(self.cluster.folder)}"

    def counters(self) -> dict[str, int]:
        return self.cluster.counters()

    @staticmethod
    def slice_note(before: dict[str, int], after: dict[str, int]) -> str:
        return (f"WAL written {mib(after['wal_bytes'] - before['wal_bytes'])}, "
                f"checkpoints {checkpoints(before, after)}")


def checkpoints(before: dict[str, int], after: dict[str, int]) -> str:
    timed = after["checkpoints_timed"] - before["checkpoints_timed"]
    requested = after["checkpoints_requested"] - before["checkpoints_requested"]
    return f"{timed} timed, {requested} requested"


class PostgresStore:
    name = "postgres"
    # The service runs its PostgreSQL writer's connection on a thread of this name. What it
    # sends goes through send(), which /proc does not count; the server's WAL says more.
    writer_thread = "postgres-writer"
    writer_waits_on = "on the server"
    writer_bytes_counted = False

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.cluster = pgcluster.Cluster(cache)

    def __enter__(self) -> "PostgresStore":
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.cluster.__exit__(*exc)

    @staticmethod
    def schema() -> bytes:
        migrations = sorted((ROOT / "src" / "storage" / "postgres" / "migrations").glob("*.sql"))
        return b"".join(path.read_bytes() for path in migrations)

    def describe(self) -> list[str]:
        return ["store: PostgreSQL, a database of its own, the service connected over TCP as "
                "the database's owner (no superuser)", *self.cluster.describe()]

    @staticmethod
    def _name(kind: str, rows: int, key: str) -> str:
        return f"{kind}_{rows}_{key}"

    def cached(self, kind: str, rows: int, key: str) -> PostgresDatabase | None:
        name = self._name(kind, rows, key)
        return PostgresDatabase(self.cluster, name) if self.cluster.exists(name) else None

    def summary(self, db: PostgresDatabase) -> str | None:
        return self.cluster.comment(db.name)

    def build(self, kind: str, rows: int, key: str, fill: Fill) -> PostgresDatabase:
        name = self._name(kind, rows, key)
        building = f"building_{name}"
        work = self.cache / f"{kind}-{rows}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        self.cluster.drop(building)
        self.cluster.create(building)
        # Renamed only once complete, so an interrupted build is never taken for a cached one.
        summary = fill(self.cluster.url(building), work)
        # The import ends with VACUUM (ANALYZE), so every run is timed on a database with
        # statistics and its visibility map set, as one that has been in use.
        self.cluster.rename(building, name)
        if summary is not None:
            self.cluster.comment(name, summary)
        shutil.rmtree(work, ignore_errors=True)
        return PostgresDatabase(self.cluster, name)

    def fresh(self, folder: Path, label: str, template: PostgresDatabase | None
              ) -> PostgresDatabase:
        name = f"run_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}_{label}"
        self.cluster.create(name, template.name if template else None)
        return PostgresDatabase(self.cluster, name)

    def load_marks(self) -> dict:
        """The server's counters, CPU time and log position, to compare after a load."""
        return {**self.cluster.counters(), "cpu_s": self.cluster.cpu_seconds(),
                "log_offset": self.cluster.log_size()}

    def load_notes(self, before: dict, after: dict, seconds: float, rows: int) -> list[str]:
        """What the server did during a load: `before`/`after` are from `load_marks()`."""
        wal = after["wal_bytes"] - before["wal_bytes"]
        per_row = f" ({wal / rows / 1024:.1f} KiB per stored row)" if rows else ""
        notes = [
            f"PostgreSQL during the load: {(after['cpu_s'] - before['cpu_s']) / seconds:.2f} "
            f"cores; WAL written {mib(wal)}{per_row}; checkpoints {checkpoints(before, after)}"
        ]
        counts: dict[str, int] = {}
        first: dict[str, str] = {}
        for line in self.cluster.log_since(before["log_offset"]):
            found = re.search(r"\b(PANIC|FATAL|ERROR|WARNING):  ", line)
            if found:
                level = found.group(1)
                counts[level] = counts.get(level, 0) + 1
                first.setdefault(level, line.strip()[:300])
        notes += [f"PostgreSQL log: {counts[level]} {level} lines, first: {first[level]}"
                  for level in counts]
        return notes


def schema_key(store: "SqliteStore | PostgresStore", *extra: bytes) -> str:
    """The cache key of a pre-filled database: the store's schema and what filled it."""
    return hashlib.sha256(store.schema() + b"".join(extra)).hexdigest()[:12]
