"""Shared fixtures: the build, a throwaway PostgreSQL, data directories.

Everything here is real: the PostgreSQL server is the system's, started
for this test run (as an unprivileged user when the suite runs as root,
since PostgreSQL refuses root), and the programs are the ones just built.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("DIR_BUILD", os.path.join(ROOT, "build"))


def pg_bindir():
    env = os.environ.get("DIR_PG_BINDIR")
    if env:
        return env
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda p: int(p.split("/")[-2]))
    if not dirs:
        pytest.fail("PostgreSQL server binaries not found; run scripts/deps")
    return dirs[-1]


def as_pg_user(argv):
    """Run argv as an unprivileged user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", os.environ.get("DIR_PG_USER", "postgres"),
                "--"] + argv
    return argv


def mkdtemp_shared(prefix):
    """A temporary directory the PostgreSQL user can reach (mode 0755)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def pg_user_chown(path):
    if os.geteuid() == 0:
        pw = pwd.getpwnam(os.environ.get("DIR_PG_USER", "postgres"))
        os.chown(path, pw.pw_uid, pw.pw_gid)


class PgServer:
    """A private PostgreSQL cluster on a Unix socket in a temp dir."""

    def __init__(self):
        self.base = mkdtemp_shared("dirpg-")
        self.data = os.path.join(self.base, "data")
        self.sock = self.base
        pg_user_chown(self.base)
        bindir = pg_bindir()
        self.pg_ctl = os.path.join(bindir, "pg_ctl")
        subprocess.run(as_pg_user([os.path.join(bindir, "initdb"), "-D",
                                   self.data, "-U", "dir", "-A", "trust",
                                   "--no-sync", "-E", "UTF8",
                                   "--no-locale"]),
                       check=True, stdout=subprocess.DEVNULL)
        self.start()

    def start(self):
        subprocess.run(as_pg_user([
            self.pg_ctl, "start", "-w", "-D", self.data, "-l",
            os.path.join(self.data, "server.log"), "-o",
            f"-c listen_addresses='' -c unix_socket_directories='{self.sock}'"
            " -c fsync=off -c max_connections=200"]),
            check=True, stdout=subprocess.DEVNULL)

    def stop(self, mode="fast"):
        subprocess.run(as_pg_user([self.pg_ctl, "stop", "-w", "-m", mode,
                                   "-D", self.data]),
                       check=False, stdout=subprocess.DEVNULL)

    def dsn(self, dbname="postgres"):
        return f"host={self.sock} dbname={dbname} user=dir"

    def psql(self, sql, dbname="postgres"):
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v",
                              "ON_ERROR_STOP=1", "-d", self.dsn(dbname),
                              "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def new_database(self):
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return name

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    server = PgServer()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def build():
    for prog in ("dirctl",):
        path = os.path.join(BUILD, prog, prog)
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is not built; run scripts/test")
    return BUILD


@pytest.fixture
def tmpdir_shared():
    d = mkdtemp_shared("dirtest-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# How many cases tests/integration/test_badinput.py ran; printed in the
# summary so that CI (pytest -q, no -s) shows it.
BADINPUT_CASES = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    n = config.stash.get(BADINPUT_CASES, None)
    if n is not None:
        terminalreporter.write_line(f"bad-input cases: {n}")
