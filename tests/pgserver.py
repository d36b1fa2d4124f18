"""A private PostgreSQL cluster for the tests: initdb into a temporary folder, a server on
a free loopback port with trust authentication, a fresh database per test.

The server binaries are found on PATH or where Debian's `postgresql` package puts them.
Where there are none the PostgreSQL tests skip, saying why; under CI they fail instead,
since `.ci/run` installs the package. As root (containers), the cluster runs as an
unprivileged user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = "dtindex_template"


def binaries() -> Path | None:
    """The folder of `initdb` and `pg_ctl`, or None where PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(Path(folder) / "initdb", os.X_OK):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    folder: Path
    bin: Path
    port: int
    user: str | None  # the system user the server runs as (None: this one)
    created: int = 0  # databases made so far

    def run(self, *argv: str) -> None:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            capture_output=True,
            cwd=self.folder,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode()}\n{tail}")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run `sql` outside a transaction (CREATE DATABASE cannot run in one)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def start(bin_folder: Path) -> Cluster:
    """initdb and start a server; the caller stops it with `stop`."""
    folder = Path(tempfile.mkdtemp(prefix="dtindex-pg-"))
    user = "nobody" if os.geteuid() == 0 else None
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(folder, bin_folder, _free_port(), user)
    cluster.run("initdb", "-D", "data", "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    options = f"-k {folder} -h 127.0.0.1 -p {cluster.port} -F -c max_connections=200"
    cluster.run("pg_ctl", "-D", "data", "-l", "server.log", "-o", options, "-w", "start")
    cluster.admin(f"CREATE DATABASE {TEMPLATE}")
    return cluster


def stop(cluster: Cluster) -> None:
    try:
        cluster.run("pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(cluster.folder, ignore_errors=True)


def new_database(cluster: Cluster) -> str:
    """A fresh, empty database's URL: a copy of the empty template (fast); `stop` drops it."""
    cluster.created += 1
    name = f"index_{cluster.created}"
    cluster.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return cluster.url(name)


def drop_database(cluster: Cluster, url: str) -> None:
    """Drop a database `new_database` made, ending any session still in it."""
    cluster.admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def rows(db: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """`sql` (`?` marks) on the index at `db` (an SQLite path or a URL), read as another
    process reads it; no rows while the index or its tables do not exist."""
    if "://" not in db:
        try:
            uri = f"{Path(db).absolute().as_uri()}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
                return [tuple(row) for row in conn.execute(sql, params).fetchall()]
        except sqlite3.OperationalError:
            return []
    import psycopg

    with psycopg.connect(db) as conn:
        try:
            found = conn.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[call-overload]
        except psycopg.errors.UndefinedTable:
            return []
    return [tuple(row) for row in found]


def count(db: str, sql: str) -> int:
    """The number `sql` counts; 0 while the index or its tables do not exist."""
    found = rows(db, sql)
    return int(found[0][0]) if found else 0  # type: ignore[call-overload]
