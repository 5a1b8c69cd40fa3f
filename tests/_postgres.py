"""A throw-away PostgreSQL server for the tests: Debian's binaries, a scratch data folder.

:func:`start_postgres` runs ``initdb`` into a new folder and ``pg_ctl start`` with a unix
socket in that folder and a free loopback port, trusts local connections, and stops the
server (``pg_ctl stop -m fast``) and removes the folder when the block ends. PostgreSQL
refuses to run as root: as root the server runs as the ``postgres`` system user that
Debian's package creates (else ``nobody``), which then owns the data folder.

The binaries are looked up in ``$PG_BIN``, on ``PATH``, then in Debian's
``/usr/lib/postgresql/<version>/bin``; ``make test`` installs Debian's ``postgresql``.
Missing binaries fail the test that needs them, saying how to install them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SUPERUSER = "course"
INSTALL_HINT = ("PostgreSQL's server binaries (initdb, pg_ctl) were not found: `make test` "
                "installs Debian's `postgresql` package (as root: apt-get install postgresql); "
                "elsewhere set PG_BIN=/path/to/postgresql/bin")


@dataclasses.dataclass(frozen=True)
class Postgres:
    """A running server: where it listens and who may connect (without a password)."""

    host: str
    port: int
    socket_dir: Path
    user: str = SUPERUSER

    def url(self, database: str = "postgres") -> str:
        """``postgresql://`` URL of ``database`` over the loopback port."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; its ``postgresql://`` URL."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=self.user,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def postgres_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``; fails the test when there is none."""
    candidates = [os.environ.get("PG_BIN")] if os.environ.get("PG_BIN") else []
    if shutil.which("pg_ctl"):
        candidates.append(str(Path(shutil.which("pg_ctl")).parent))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    candidates += [str(p) for p in reversed(debian)]
    for folder in candidates:
        if all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    pytest.fail(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """Who runs the server: ``None`` (this user), else a system user when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("running as root, and neither a `postgres` nor a `nobody` user exists "
                "for PostgreSQL to run as (it refuses root)")


@contextlib.contextmanager
def start_postgres() -> Iterator[Postgres]:
    """Run a fresh PostgreSQL server until the block ends (see the module docstring)."""
    bin_dir = postgres_bin()
    user = _server_user()
    # Not under pytest's tmp folder: that is private to root, and the server user must
    # reach its files. mkdtemp makes the folder private to whoever owns it.
    base = Path(tempfile.mkdtemp(prefix="course-postgres-"))
    data, sockets = base / "data", base / "socket"
    sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (base, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    as_user = ({"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
               if user is not None else {})
    env = dict(os.environ, LC_ALL="C", LANG="C")
    env.pop("PGDATA", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=base, env=env,
                              capture_output=True, text=True, timeout=120, check=False,
                              **as_user)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")
        return done

    port = _free_port()
    try:
        try:
            run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                "--no-sync")
            with (data / "postgresql.conf").open("a") as conf:
                conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
                           f"unix_socket_directories = '{sockets}'\nfsync = off\n"
                           "full_page_writes = off\nsynchronous_commit = off\n")
            run("pg_ctl", "start", "-D", str(data), "-l", str(base / "server.log"), "-w",
                "-t", "60")
        except RuntimeError as exc:
            log = base / "server.log"
            raise RuntimeError(f"{exc}\nserver log:\n"
                               f"{log.read_text() if log.exists() else '(none)'}") from None
        try:
            yield Postgres("127.0.0.1", port, sockets)
        finally:
            run("pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60")
    finally:
        shutil.rmtree(base, ignore_errors=True)
