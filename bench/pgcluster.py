"""A PostgreSQL server of the benchmarks' own: never a server anyone else uses.

The cluster lives in `bench/.cache/postgres-<major>/` (made once with `initdb`, kept between
runs so pre-filled databases can be kept in it) and is started with `pg_ctl` on a free
127.0.0.1 port for one run of a script, then stopped, also after an error or Ctrl-C. Unix
sockets are off and every connection needs the password generated at `initdb`, so nothing but
this run can reach it. When run as root the server runs as the `postgres` OS user (it refuses
root) and the cluster folder belongs to that user; when that user cannot reach the folder, the
cluster is made in a temporary folder and deleted at the end instead.

The settings are `SETTINGS` below, written to the cluster's `bench.conf` at every start and
printed by `describe()` as the server reports them. PostgreSQL's durability defaults stay:
`fsync=on`, `synchronous_commit=on`, `full_page_writes=on`.

Stdlib only (Python 3.11+).
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

# What the benchmarks run PostgreSQL with. Everything not named here is PostgreSQL's default
# (max_wal_size 1GB, checkpoint_timeout 5min, wal_level replica, max_connections 100, ...).
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "shared_buffers": "'512MB'",  # PostgreSQL's 128MB default is a toy; a quarter of a small box
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "log_checkpoints": "on",  # so a scenario's log shows when checkpoints ran
    "log_line_prefix": "'%m [%p] '",
}
# Shown by describe(): the settings above and the defaults that shape a write load.
SHOWN = ("shared_buffers", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
         "max_wal_size", "checkpoint_timeout", "checkpoint_completion_target", "wal_buffers",
         "max_connections", "lc_ctype")
SUPERUSER = "postgres"
# The role the service connects as: it owns each database it uses, and is no superuser.
SERVICE_ROLE = "bench"
OS_USER = "postgres"


def log(message: str) -> None:
    print(f"[postgres] {message}", file=sys.stderr, flush=True)


def find_bindir() -> Path:
    """Where initdb, pg_ctl, postgres and psql are: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/*/bin, else the folder of the initdb on PATH."""
    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parent.name)],
        reverse=True,
    )
    candidates += [Path(p) for p in versions]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return bindir
    sys.exit(
        "bench: PostgreSQL's server programs (initdb, pg_ctl, postgres, psql) were not found. "
        "Install them, e.g. `apt-get install -y postgresql postgresql-contrib` (Debian/Ubuntu), "
        "or put their folder on PATH."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A running cluster of the benchmarks' own; use it as a context manager."""

    def __init__(self, cache: Path) -> None:
        cache = cache.resolve()
        self.bindir = find_bindir()
        version = subprocess.run([str(self.bindir / "postgres"), "--version"],
                                 capture_output=True, text=True, check=True).stdout
        found = re.search(r"\(PostgreSQL\) (\d+)(\S*)", version)
        if not found:
            sys.exit(f"bench: cannot tell the version of {self.bindir / 'postgres'}: {version}")
        self.version = found.group(1) + found.group(2)
        self.major = found.group(1)
        self.as_owner: list[str] = []
        self.owner_uid = os.geteuid()
        if os.geteuid() == 0:
            try:
                self.owner_uid = pwd.getpwnam(OS_USER).pw_uid
            except KeyError:
                sys.exit(f"bench: PostgreSQL refuses to run as root and there is no "
                         f"`{OS_USER}` user to run it as; create one or run as another user")
            self.as_owner = ["runuser", "-u", OS_USER, "--"]
        cache.mkdir(parents=True, exist_ok=True)
        # One run at a time per cluster folder: a second run would stop this one's server.
        self._lock = open(cache / f"postgres-{self.major}.lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(f"bench: another benchmark run is using {cache.name}/postgres-{self.major}; "
                     "wait for it to finish")
        self.folder = cache / f"postgres-{self.major}"
        self.throwaway = False
        if not self._owner_can_reach(cache):
            self.folder = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
            self.throwaway = True
            log(f"the {OS_USER} user cannot reach {cache}; "
                f"using a throwaway cluster in {self.folder}")
        self.data = self.folder / "data"
        self.log_path = self.folder / "server.log"
        self.port = 0
        self.process_id = 0
        self.password = ""
        self.server_version_num = 0

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> "Cluster":
        try:
            self._init()
            self._start()
            self._prepare_roles()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _owner_can_reach(self, cache: Path) -> bool:
        if not self.as_owner:
            return True
        probe = subprocess.run([*self.as_owner, "test", "-x", str(cache)], cwd="/")
        return probe.returncode == 0

    def _run_as_owner(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        # The working directory is the cluster's folder: the server's user may not be allowed
        # into the caller's.
        return subprocess.run([*self.as_owner, *command], cwd=self.folder, **kwargs)

    def _init(self) -> None:
        password_file = self.folder / "password"
        if (self.data / "PG_VERSION").exists() and password_file.exists():
            self.password = password_file.read_text().strip()
            return
        log(f"initdb (PostgreSQL {self.version}) in {self.shown_path(self.folder)}")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.password = secrets.token_hex(16)
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        os.chown(self.folder, self.owner_uid, -1)
        os.chown(password_file, self.owner_uid, -1)
        locale = ["--locale=C.UTF-8"] if self._has_c_utf8() else ["--no-locale"]
        done = self._run_as_owner(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
             "--auth=scram-sha-256", f"--pwfile={password_file}", "--encoding=UTF8", *locale],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# The benchmarks' settings, rewritten at every start.\n"
                       "include_if_exists = 'bench.conf'\n")

    @staticmethod
    def _has_c_utf8() -> bool:
        found = subprocess.run(["locale", "-a"], capture_output=True, text=True)
        return any(name.lower() in ("c.utf8", "c.utf-8") for name in found.stdout.split())

    def _start(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists() and self._pg_ctl("status").returncode == 0:
            # Left running by a run that was killed; it is this folder's, and the lock says no
            # other run uses it.
            log("stopping the cluster a killed run left running")
            self._pg_ctl("stop", "-m", "fast", "-w")
        for attempt in range(3):
            self.port = free_port()
            conf = {**SETTINGS, "port": str(self.port)}
            bench_conf = self.data / "bench.conf"
            bench_conf.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
            os.chown(bench_conf, self.owner_uid, -1)
            started = self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_path))
            if started.returncode == 0:
                break
            if attempt == 2:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the PostgreSQL server did not start:\n{started.stderr}{tail}")
        self.process_id = int(pid_file.read_text().split("\n", 1)[0])
        self.server_version_num = int(self.sql("SHOW server_version_num")[0])
        log(f"PostgreSQL {self.version} (pid {self.process_id}) on 127.0.0.1:{self.port}")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return self._run_as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
                                  capture_output=True, text=True)

    def _prepare_roles(self) -> None:
        if not self.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{SERVICE_ROLE}'"):
            self.sql(f"CREATE ROLE {SERVICE_ROLE} LOGIN PASSWORD '{self.password}'")
        if not self.sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"):
            raise RuntimeError("the pg_trgm extension is not installed (the service needs it); "
                               "install PostgreSQL's contrib package, e.g. postgresql-contrib")

    def stop(self) -> None:
        """Stops the server (fast shutdown: sessions end, a checkpoint is written)."""
        if self.port and (self.data / "postmaster.pid").exists():
            stopped = self._pg_ctl("stop", "-m", "fast", "-w", "-t", "120")
            if stopped.returncode != 0:
                log(f"pg_ctl stop failed: {stopped.stderr.strip()}")
            else:
                log("cluster stopped")
        self.port = 0
        if self.throwaway:
            shutil.rmtree(self.folder, ignore_errors=True)
        self._lock.close()

    # -- SQL -------------------------------------------------------------------------------

    def _psql(self, database: str, *args: str) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=SUPERUSER,
                   PGPASSWORD=self.password, PGDATABASE=database, PGCONNECT_TIMEOUT="10")
        return [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                *args], env

    def sql(self, statement: str, database: str = "postgres") -> list[str]:
        """Runs one statement as the superuser; returns its output lines (`-At`)."""
        command, env = self._psql(database, "-c", statement)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed on {statement[:200]!r}: {done.stderr.strip()}")
        return [line for line in done.stdout.split("\n") if line]

    def rows(self, query: str, database: str) -> Iterator[tuple]:
        """Streams the rows of `query` as tuples (text as str, numbers as int, NULL as None),
        with the service's escape of NUL and U+0001 in stored text undone (see `decode`)."""
        wrapped = f"SELECT row_to_json(r)::text FROM ({query}) AS r"
        command, env = self._psql(database, "-v", "FETCH_COUNT=20000", "-c", wrapped)
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, encoding="utf-8") as process:
            for line in process.stdout:
                if line.strip():
                    yield tuple(decode(v) if isinstance(v, str) else v
                                for v in json.loads(line).values())
            error = process.stderr.read()
        if process.returncode != 0:
            raise RuntimeError(f"psql failed on {query[:200]!r}: {error.strip()}")

    def one(self, query: str, database: str):
        """The single value `query` returns."""
        return next(self.rows(query, database))[0]

    # -- databases -------------------------------------------------------------------------

    def url(self, database: str) -> str:
        """The service's DATABASE_URL for `database` (it connects as the owner role)."""
        return (f"postgres://{SERVICE_ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"
                "?sslmode=disable")

    def shown_url(self, database: str) -> str:
        return f"postgres://{SERVICE_ROLE}@127.0.0.1:{self.port}/{database}"

    def exists(self, database: str) -> bool:
        return bool(self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'"))

    def create(self, database: str, template: str | None = None) -> None:
        """A new database owned by the service's role, empty or a copy of `template`; then a
        checkpoint, so no earlier work is still being written out when a load starts."""
        clause = f" TEMPLATE {template}" if template else ""
        if template and self.server_version_num >= 150000:
            # A file copy: the default (WAL_LOG) would write the whole template to the WAL,
            # and its checkpoint would land inside the timed load.
            clause += " STRATEGY FILE_COPY"
        self.sql(f"CREATE DATABASE {database} OWNER {SERVICE_ROLE}{clause}")
        self.sql("CHECKPOINT")

    def drop(self, database: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {database}")

    def rename(self, old: str, new: str) -> None:
        self.sql(f"ALTER DATABASE {old} RENAME TO {new}")

    def comment(self, database: str, text: str | None = None) -> str | None:
        """Sets (with `text`) or reads the database's comment."""
        if text is not None:
            literal = text.replace("'", "''")
            self.sql(f"COMMENT ON DATABASE {database} IS '{literal}'")
            return text
        found = self.sql("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                         f"WHERE datname = '{database}'")
        return found[0] if found else None

    # -- what the server did ---------------------------------------------------------------

    def describe(self) -> list[str]:
        """The server and the settings that shape a write load, as the server reports them."""
        shown = ", ".join(f"'{name}'" for name in SHOWN)
        values = dict(
            line.split("|", 1) for line in self.sql(
                "SELECT name, current_setting(name) FROM pg_settings "
                f"WHERE name IN ({shown})"
            )
        )
        settings = ", ".join(f"{name}={values[name]}" for name in SHOWN if name in values)
        where = "a throwaway folder" if self.throwaway else self.shown_path(self.folder)
        return [
            f"PostgreSQL {self.version}, the benchmark's own cluster in {where}, "
            f"127.0.0.1:{self.port}, server as OS user {pwd.getpwuid(self.owner_uid).pw_name}",
            f"PostgreSQL settings: {settings}",
        ]

    def counters(self) -> dict[str, int]:
        """Cluster-wide: WAL bytes written so far and checkpoints run (timed and requested)."""
        if self.server_version_num >= 170000:
            checkpoints = ("SELECT num_timed AS timed, num_requested AS requested "
                           "FROM pg_stat_checkpointer")
        else:
            checkpoints = ("SELECT checkpoints_timed AS timed, checkpoints_req AS requested "
                           "FROM pg_stat_bgwriter")
        line = self.sql(
            "SELECT json_build_object('wal_bytes', "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8, "
            "'checkpoints_timed', c.timed, 'checkpoints_requested', c.requested)::text "
            f"FROM ({checkpoints}) AS c"
        )[0]
        return json.loads(line)

    def cpu_seconds(self) -> float:
        """CPU time of the server: the postmaster, its live processes and those that ended."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == self.process_id:
                total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            elif ppid == self.process_id:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> list[str]:
        with open(self.log_path, "rb") as log_file:
            log_file.seek(offset)
            return log_file.read().decode(errors="replace").splitlines()

    @staticmethod
    def shown_path(path: Path) -> str:
        here = Path(__file__).resolve().parent
        try:
            return f"bench/{path.relative_to(here)}"
        except ValueError:
            return str(path)


def decode(stored: str) -> str:
    """A text as the service stored it on PostgreSQL, back as it was sent: the service writes
    NUL as U+0001 U+0001 and U+0001 as U+0001 U+0002 (PostgreSQL text cannot hold NUL)."""
    if "\x01" not in stored:
        return stored
    out, chars = [], iter(stored)
    for c in chars:
        if c == "\x01":
            out.append("\x01" if next(chars, "") == "\x02" else "\x00")
        else:
            out.append(c)
    return "".join(out)
