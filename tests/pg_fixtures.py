"""A real PostgreSQL server for the shared-store tests, and a fresh database per test.

Use with `pytest_plugins = ["tests.pg_fixtures"]`. The server is, in order:
1. WXTOKEN_TEST_POSTGRES (a URL to a database the tests may CREATE DATABASE from);
2. the local server on 127.0.0.1:5432 (CI's, trust authentication), if it answers;
3. a throwaway cluster started with initdb/pg_ctl, if they are installed and we are not root.
With none, the tests are skipped with one line saying how to provide one, except on CI
(CI=true), where that is a failure: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import free_port

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW = (
    "no PostgreSQL server for the shared-store tests: set WXTOKEN_TEST_POSTGRES="
    "postgresql://USER@127.0.0.1:5432/postgres, or run one on 127.0.0.1:5432 with trust "
    "authentication (apt-get install postgresql)"
)


def _answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _throwaway(base: Path) -> tuple[str, subprocess.Popen[bytes] | None] | None:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl or os.geteuid() == 0:  # initdb refuses to run as root
        return None
    data = base / "data"
    subprocess.run([initdb, "-A", "trust", "-U", "postgres", "-D", str(data)], check=True)
    port = free_port()
    subprocess.run(
        [pg_ctl, "-D", str(data), "-w", "-l", str(base / "log"), "-o",
         f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
        check=True,
    )  # fmt: skip
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", None


def server_url() -> str | None:
    given = os.environ.get("WXTOKEN_TEST_POSTGRES", "").strip()
    if given:
        return given
    return LOCAL if _answers(LOCAL) else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    url = server_url()
    started: Path | None = None
    if url is None:
        base = Path(tempfile.mkdtemp(prefix="wxtoken-pg-"))
        found = _throwaway(base)
        if found is not None:
            url, started = found[0], base
    if url is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(HOW + " (CI must run these tests)")
        pytest.skip(HOW)
    yield url
    if started is not None:
        subprocess.run(
            [shutil.which("pg_ctl") or "pg_ctl", "-D", str(started / "data"), "-m", "fast",
             "stop"],
            check=False,
        )  # fmt: skip
        shutil.rmtree(started, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL to a new, empty database of its own, dropped after the test."""
    import psycopg

    name = f"wxt_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pgbouncer(pg_url: str, tmp_path: Path) -> Iterator[str]:
    """PgBouncer in transaction mode in front of the test's database: the URL through it.

    Debian's package (apt-get install pgbouncer); it will not run as root, so as root it is
    started with `-u postgres`. Missing, the test is skipped with one line (a failure on CI).
    """
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists(
        "/usr/sbin/pgbouncer") else None)  # fmt: skip
    if binary is None:
        message = "PgBouncer is not installed: apt-get install pgbouncer"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI must run this test)")
        pytest.skip(message)
    parts = urlsplit(pg_url)
    port = free_port()
    base = Path(tempfile.mkdtemp(prefix="wxtoken-pgbouncer-"))
    base.chmod(0o755)
    (base / "users.txt").write_text(f'"{parts.username}" ""\n')
    ini = base / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={parts.hostname} port={parts.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {base / 'users.txt'}\n"
        "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 20\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for f in base.iterdir():
        f.chmod(0o644)
    cmd = [binary, str(ini)]
    if os.geteuid() == 0:
        cmd[1:1] = ["-u", "postgres"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = urlunsplit((parts.scheme, f"{parts.username}@127.0.0.1:{port}", parts.path, "", ""))
    try:
        from tests.conftest import wait_until

        assert wait_until(lambda: _answers(url), timeout=15), "pgbouncer did not start"
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(base, ignore_errors=True)
