"""The one set of fixtures and helpers every integration test uses.

Everything here is real: the PostgreSQL server is the system's, started
for this test run (as an unprivileged user when the suite runs as root,
since PostgreSQL refuses root); dird, dirctl and dchat are the programs
just built, reached over real sockets with real TLS, and talked to with
the tools a user has (curl, openssl, a terminal).

What is here, in the order a test meets it:

  paths and commands  BUILD, dird_path() ..., run(), openssl(), make_csr(),
                      ca_sign(), MIGRATIONS
  waiting             wait_until(): every wait is for a condition, with a
                      deadline; nothing sleeps to let another process act
  PostgreSQL          the session's server (fixture pg), DbDigest
  dird                Dird, Resp, curl(), client_ctx(), User
  the registry        Registry (a data directory, its database, its dird,
                      its users and peers), fixtures reg and registry
  dchat               Peer, call(), people(), Lines, Terminal, Screen,
                      peer_client_ctx(), check_peer_cert()
  DNS                 NameServer (Knot DNS serving test zones, signed
                      with DNSSEC where asked), dnsq()
  sanitizers          every process the suite starts has its output read
                      for sanitizer findings once: short commands by run(),
                      long-running ones when the test that started them
                      ends (fixture sanitizer_clean)
"""
import calendar
import fcntl
import glob
import json
import os
import pty
import pwd
import queue
import re
import select
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import termios
import threading
import time
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("DIR_BUILD", os.path.join(ROOT, "build"))


def uses_asan(exe):
    """True for a program built with -fsanitize=address (gcc or clang)."""
    p = subprocess.run(["ldd", exe], capture_output=True, text=True)
    if "libasan" in p.stdout:
        return True
    with open(exe, "rb") as f:  # clang links the runtime statically
        return b"__asan_init" in f.read()


# The migrations in schema/, in order.  Listed here rather than read from
# the directory: a test of "dirctl migrate" must not follow a file that
# was added or lost by mistake.
MIGRATIONS = ["001_init.sql", "002_change_notify.sql",
              "003_audit_chains.sql", "004_revocation.sql",
              "005_federation.sql", "006_inbox.sql", "007_push.sql",
              "008_refresh_path.sql", "009_requests.sql", "010_escrow.sql"]
SCHEMA_VERSION = len(MIGRATIONS)

DOMAIN = "example.org"


# ---- paths and commands -----------------------------------------------------


def dird_path():
    return os.path.join(BUILD, "dird", "dird")


def dirctl_path():
    return os.path.join(BUILD, "dirctl", "dirctl")


def dchat_path():
    return os.path.join(BUILD, "client", "dchat")


# What AddressSanitizer, LeakSanitizer and UBSan print on a finding
# (the sanitizer build halts on the first, see scripts/test).
SANITIZER_MARKS = ("Sanitizer", "runtime error:")


def sanitizer_findings(text):
    """The lines of text that report a sanitizer finding."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return [line for line in text.splitlines()
            if any(m in line for m in SANITIZER_MARKS)]


def assert_clean(text, who):
    found = sanitizer_findings(text)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    assert not found, f"{who}: sanitizer finding:\n{text[-20000:]}"


def run(argv, check=True, input=None, env=None, timeout=300):
    """Run a command to its end: CompletedProcess with text output.  Its
    standard error is read for sanitizer findings whatever the exit."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(argv, capture_output=True, text=True, input=input,
                       env=e, timeout=timeout, errors="replace")
    assert_clean(p.stderr, argv[0])
    if check and p.returncode != 0:
        raise AssertionError(
            f"{argv} exited {p.returncode}\nstdout: {p.stdout}\n"
            f"stderr: {p.stderr}")
    return p


def openssl(*args, check=True, input=None):
    return run(["openssl", *args], check=check, input=input)


def dirctl(data, *args, check=True, input=None, env=None):
    return run([dirctl_path(), "--data", data, *args], check=check,
               input=input, env=env)


def make_csr(dirpath, name, keyargs=("-newkey", "ec",
                                     "-pkeyopt", "ec_paramgen_curve:P-256"),
             subj="/UID=someone@example.org/CN=Some One"):
    """A key and CSR made with openssl req, as a user would."""
    key = os.path.join(dirpath, name + ".key")
    csr = os.path.join(dirpath, name + ".csr")
    openssl("req", "-new", *keyargs, "-nodes", "-keyout", key, "-out", csr,
            "-subj", subj)
    return key, csr


def ca_sign(data, workdir, csr, name, subj=None, start=None, end=None,
            eku="clientAuth,serverAuth", serial=None, utf8=False):
    """A certificate for csr signed with the registry's own CA key
    (data/ca.key) by `openssl ca`, which, unlike dird, lets a test choose
    the dates (YYYYMMDDHHMMSSZ), the EKU, the subject and the serial (hex;
    random when None).  It is not recorded in the registry's store.
    Returns the path of the PEM certificate."""
    d = os.path.join(workdir, "ca-" + name)
    os.makedirs(os.path.join(d, "new"))
    open(os.path.join(d, "index.txt"), "w").close()
    if serial is None:
        serial = f"{int.from_bytes(os.urandom(7), 'big') | 1 << 60:X}"
    with open(os.path.join(d, "serial"), "w") as f:
        f.write(serial + "\n")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(f"""[ca]
default_ca = x
[x]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}/new
serial = {d}/serial
default_md = sha256
default_days = 30
policy = p
x509_extensions = ext
unique_subject = no
[p]
UID = optional
commonName = supplied
[ext]
extendedKeyUsage = {eku}
keyUsage = digitalSignature
""")
    out = os.path.join(workdir, name + ".pem")
    extra = []
    if subj:
        extra += ["-subj", subj]
    if utf8:
        extra += ["-utf8"]
    if start:
        extra += ["-startdate", start]
    if end:
        extra += ["-enddate", end]
    openssl("ca", "-batch", "-config", cnf, "-cert",
            os.path.join(data, "ca.pem"), "-keyfile",
            os.path.join(data, "ca.key"), "-in", csr, "-out", out,
            "-notext", *extra)
    return out


# ---- waiting ------------------------------------------------------------------


def wait_until(cond, what="the condition", timeout=60, interval=0.05):
    """Call cond() until it returns a true value, and return that value;
    fail with `what` once timeout seconds have passed.  The deadline is
    for a loaded machine under the sanitizers; the interval only keeps
    the poll from spinning."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{what}")
        time.sleep(interval)  # the interval of a poll with a deadline


def rfc3339(text):
    """Seconds since the epoch of a registry time (YYYY-MM-DDTHH:MM:SSZ)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def accepts(port, host="127.0.0.1"):
    """Whether a TCP connection to host:port is accepted now."""
    try:
        socket.create_connection((host, port), 0.5).close()
        return True
    except OSError:
        return False


# ---- the processes a test starts, and their sanitizer findings ------------

# Long-running processes started by the suite, oldest first: objects with
# finish(), which stops the process if it still runs and returns all it
# wrote (for the sanitizer check), and running().
_STARTED = []


def started(obj):
    _STARTED.append(obj)
    return obj


def _finish(objs):
    problems = []
    for obj in objs:
        try:
            out = obj.finish()
        except Exception as e:  # a stop that failed is a finding too
            problems.append(f"{obj!r}: could not be stopped: {e!r}")
            continue
        if sanitizer_findings(out):
            if isinstance(out, bytes):
                out = out.decode(errors="replace")
            problems.append(f"{obj!r}: sanitizer finding:\n{out[-20000:]}")
    return problems


class _Spawned:
    def __init__(self, proc, errlog):
        self.proc = proc
        self.errlog = errlog

    def __repr__(self):
        return f"<{' '.join(map(str, self.proc.args))[:200]}>"

    def running(self):
        return self.proc.poll() is None

    def finish(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with open(self.errlog, errors="replace") as f:
            return f.read()


def stderr_of(proc):
    """What a process started by spawn() wrote to standard error."""
    with open(proc.errlog, errors="replace") as f:
        return f.read()


def spawn(argv, logdir, env=None, **kw):
    """subprocess.Popen(argv, **kw) with standard error in a file under
    logdir (proc.errlog, read by stderr_of()): a program of ours started
    in the background, whose sanitizer findings are looked for when the
    test ends (it is killed then if it still runs)."""
    fd, errlog = tempfile.mkstemp(prefix="stderr-", suffix=".log",
                                  dir=logdir)
    e = {**os.environ, **env} if env else None
    with os.fdopen(fd, "wb") as err:
        proc = subprocess.Popen(argv, stderr=err, env=e, **kw)
    proc.errlog = errlog
    started(_Spawned(proc, errlog))
    return proc


class _TestProcesses:
    """The processes one test started (those after index first)."""

    def __init__(self):
        self.first = len(_STARTED)

    def check(self):
        """Stop what the test left running, and read the output of every
        process it started, and of longer-lived ones that ended meanwhile,
        for sanitizer findings.  Called again, it finds nothing new."""
        mine = _STARTED[self.first:]
        ended = [o for o in _STARTED[:self.first] if not o.running()]
        del _STARTED[self.first:]
        for o in ended:
            _STARTED.remove(o)
        self.first = len(_STARTED)
        problems = _finish(mine + ended)
        assert not problems, "\n".join(problems)


@pytest.fixture(autouse=True)
def sanitizer_clean():
    """After each test: every process it started is stopped (if the test
    left it running) and what it wrote is read for sanitizer findings;
    so are those of longer-lived fixtures that have ended by then.  The
    test's directory (tmpdir_shared) is removed only after that."""
    procs = _TestProcesses()
    yield procs
    procs.check()


@pytest.fixture(scope="session", autouse=True)
def sanitizer_clean_at_end():
    yield
    problems = _finish(list(_STARTED))
    _STARTED.clear()
    assert not problems, "\n".join(problems)


# ---- PostgreSQL -------------------------------------------------------------


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
                             check=True, capture_output=True, text=True,
                             timeout=120)
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
    for path in (dird_path(), dirctl_path(), dchat_path()):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is not built; run scripts/test")
    return BUILD


@pytest.fixture
def tmpdir_shared(sanitizer_clean):
    """A directory for one test, removed at its end, once the processes
    that wrote their output there were checked."""
    d = mkdtemp_shared("dirtest-")
    yield d
    try:
        sanitizer_clean.check()
    finally:
        shutil.rmtree(d, ignore_errors=True)


class DbDigest:
    """A digest of every row of every table of one database, over a psql
    session kept open (a psql per call would cost more than many of the
    checks it serves).  Proof that a refusal changed nothing.

    No table is left out, not even audit_log: a refused request must not
    write a single row.  Sequences are not tables and are not covered:
    nextval() is not transactional, so a refused INSERT (a duplicate, a
    CHECK violation) advances one without storing anything."""

    EXPECTED = {"users", "certificates", "enrol_codes", "addresses",
                "backups", "audit_log", "crl_state"}

    def __init__(self, pg, db):
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", pg.dsn(db)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.tables = None

    def query(self, sql):
        self.proc.stdin.write(sql + ";\n\\echo --end--\n")
        self.proc.stdin.flush()
        lines = []
        for line in self.proc.stdout:
            if line.rstrip("\n") == "--end--":
                return "\n".join(lines).strip()
            lines.append(line.rstrip("\n"))
        raise AssertionError("psql ended")

    def __call__(self):
        # The tables are read on first use: a registry's schema is made
        # by dirctl init, or by dird's migrations at its start.
        if self.tables is None:
            tables = self.query(
                "SELECT string_agg(quote_ident(tablename), ' ' ORDER BY "
                "tablename) FROM pg_tables WHERE schemaname = 'public'"
            ).split()
            assert self.EXPECTED <= set(tables), tables
            self.tables = tables
            self.sql = ("SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (" +
                        " UNION ALL ".join(f"SELECT '{t}:' || x::text AS t "
                                           f"FROM {t} x"
                                           for t in tables) + ") s")
        return self.query(self.sql)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)


# ---- dird -------------------------------------------------------------------


class Dird:
    """One dird process on 127.0.0.1:port, its output in a log file.

    data is given with --data (None: the environment, DIR_DATA, says it,
    and self.data is that directory); extra holds more options; env more
    environment.  start() returns once every listener accepts."""

    def __init__(self, data, port=None, dsn=None, extra=(), env=None,
                 prefix=(), listen=None, log=None):
        self.data_opt = data
        self.data = data or (env or {}).get("DIR_DATA")
        self.port = port or free_port()
        # /metrics needs an administrator's certificate on the IRP port;
        # tests read it from a metrics listener of their own.
        self.metrics_port = free_port()
        self.dsn = dsn
        self.extra = list(extra)
        self.env = env
        self.prefix = list(prefix)
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.proc = None
        self.logf = None
        logdir = self.data or tempfile.gettempdir()
        self.log = log or os.path.join(logdir, f"dird-{self.port}.log")

    def __repr__(self):
        return f"<dird on {self.listen}>"

    def argv(self):
        argv = self.prefix + [dird_path()]
        if self.data_opt is not None:
            argv += ["--data", self.data_opt]
        argv += ["--listen", self.listen, "--set",
                 f"metrics_listen=127.0.0.1:{self.metrics_port}"]
        if self.dsn:
            argv += ["--dsn", self.dsn]
        return argv + self.extra

    def spawn(self):
        """Start dird and return at once."""
        self.logf = open(self.log, "ab")
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(self.argv(), stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        started(self)
        return self

    def start(self, timeout=60):
        self.spawn()
        return self.wait_ready(timeout)

    def wait_ready(self, timeout=60):
        # Ready once every listener accepts: the metrics one opens after
        # the IRP port.
        host = self.listen.rsplit(":", 1)[0].strip("[]")
        ports = [(host, self.port), ("127.0.0.1", self.metrics_port)]

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("dird exited: " + self.read_log())
            while ports and accepts(ports[0][1], ports[0][0]):
                ports.pop(0)
            return not ports
        wait_until(ready, "dird to listen: " + self.log, timeout)
        return self

    def metrics(self):
        """The Prometheus text of /metrics, from the metrics listener."""
        with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics",
                timeout=30) as r:
            return r.read().decode()

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, and its exit status; the log is read for sanitizer
        findings then."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        rc = self.proc.returncode
        self.proc = None
        assert_clean(self.read_log(), repr(self))
        return rc

    def finish(self):
        if self.proc is not None:
            self.stop()
        return self.read_log() if os.path.exists(self.log) else ""

    @property
    def url(self):
        return f"https://localhost:{self.port}"


class Resp:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def code(self):
        """The IRP error code of an error reply."""
        return self.json()["error"]["code"]

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def client_ctx(data, user=None):
    """A TLS context that trusts the registry in data's CA and, given a
    User (or a Peer), presents its certificate."""
    ctx = ssl.create_default_context(cafile=os.path.join(data, "ca.pem"))
    if user is not None:
        ctx.load_cert_chain(user.cert, user.key)
    return ctx


def curl(d, method, path, cert=None, key=None, body=None, json_body=None,
         headers=(), ctype=None, raw_out=False, cacert=None):
    """One request with the curl command line tool; returns Resp."""
    out = os.path.join(d.data, "curl.out")
    argv = ["curl", "-sS", "-o", out, "-w", "%{http_code}", "-X", method,
            "--cacert", cacert or os.path.join(d.data, "ca.pem")]
    if cert:
        argv += ["--cert", cert, "--key", key]
    for h in headers:
        argv += ["-H", h]
    if json_body is not None:
        body = json.dumps(json_body).encode()
        ctype = ctype or "application/json"
    if body is not None:
        bodyfile = os.path.join(d.data, "curl.body")
        with open(bodyfile, "wb") as f:
            f.write(body if isinstance(body, bytes) else body.encode())
        argv += ["--data-binary", "@" + bodyfile]
    if ctype:
        argv += ["-H", "Content-Type: " + ctype]
    argv.append(d.url + path)
    p = subprocess.run(argv, capture_output=True, timeout=60)
    status = p.stdout.decode(errors="replace").strip()
    if p.returncode != 0 or not status.isdigit() or status == "000":
        return Resp(0, f"curl failed ({p.returncode}): "
                    + p.stderr.decode(errors="replace"))
    with open(out, "rb") as f:
        data = f.read()
    return Resp(int(status[-3:]), data if raw_out else
                data.decode(errors="replace"))


class User:
    """A person with a key and, after enrol(), a certificate, who talks
    to dird with curl."""

    def __init__(self, d, userid, workdir, device=""):
        self.d = d
        self.userid = userid
        self.dir = workdir
        base = os.path.join(workdir, userid.split("@")[0] + device)
        self.key = base + ".key"
        self.csr = base + ".csr"
        self.cert = base + ".pem"
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key,
                "-out", self.csr, "-subj", "/CN=whatever")

    def csr_pem(self):
        with open(self.csr) as f:
            return f.read()

    def enrol(self, code):
        r = curl(self.d, "POST", "/v1/enroll",
                 headers=[f"Authorization: Bearer {code}"],
                 json_body={"csr": self.csr_pem()})
        assert r.status == 201, r
        with open(self.cert, "w") as f:
            f.write(r.json()["certificate"])
        self.serial = r.json()["serial"]
        return r

    def req(self, method, path, **kw):
        return curl(self.d, method, path, cert=self.cert, key=self.key, **kw)


# ---- the registry -------------------------------------------------------------


class Registry:
    """A data directory made by `dirctl init` on a database of its own,
    and (unless start=False) its dird, run with `--set KEY=VALUE` for
    each of settings.  Users (curl) and peers (dchat) are made here."""

    def __init__(self, pg, base, settings=(), extra=(), start=True,
                 hosts=("localhost", "127.0.0.1"), debug=False,
                 domain=DOMAIN):
        self.pg = pg
        self.domain = domain
        self.db = pg.new_database()
        self.base = base
        self.data = os.path.join(base, "data")
        self.peers = []
        self._digest = None
        args = ["--dsn", self.dsn, "init", "--domain", domain]
        for h in hosts:
            args += ["--host", h]
        self.init_out = dirctl(self.data, *args).stdout
        out = self.ctl("ca").stdout.strip().splitlines()[-1]
        assert out.startswith("SHA-256 fingerprint: "), out
        self.fingerprint = out.split(": ", 1)[1].strip()
        self.d = None
        if start:
            self.start(*settings, extra=extra, debug=debug)

    # A few names the tests have long used.
    @property
    def work(self):
        return self.base

    @property
    def dbname(self):
        return self.db

    @property
    def dsn(self):
        return self.pg.dsn(self.db)

    @property
    def ca(self):
        return os.path.join(self.data, "ca.pem")

    def start(self, *settings, extra=(), debug=False, port=None):
        """dird on this data directory, with these settings (on port, or
        a free one)."""
        opts = ["--debug"] if debug else []
        for s in settings:
            opts += ["--set", s]
        self.d = Dird(self.data, port=port, extra=opts + list(extra)).start()
        return self.d

    def restart(self, *settings, **kw):
        """dird stopped (it must exit 0) and started again with these
        settings."""
        if self.d is not None:
            assert self.d.stop() == 0, self.d.read_log()
        return self.start(*settings, **kw)

    def ctl(self, *args, check=True, input=None, env=None):
        return dirctl(self.data, *args, check=check, input=input, env=env)

    def add(self, userid, name=None, *extra):
        self.ctl("user", "add", userid, "--name",
                 name or userid.split("@")[0].title(), *extra)

    def code(self, userid, *extra):
        return self.ctl("code", userid, *extra).stdout.strip().splitlines()[-1]

    def user(self, userid, name=None, admin=False, enrol=True, device=""):
        """A User with a key; added, and enrolled with a code, by
        default."""
        self.add(userid, name, *(["--admin"] if admin else []))
        u = User(self.d, userid, self.base, device=device)
        if enrol:
            u.enrol(self.code(userid))
        return u

    def person(self, userid, name=None, home=None):
        """Add a user and enrol a fresh dchat home for them: a Peer."""
        self.add(userid, name)
        p = Peer(self, userid, home or os.path.join(
            self.base, userid.split("@")[0]))
        p.init(self.code(userid))
        self.peers.append(p)
        return p

    def sql(self, q):
        return self.pg.psql(q, self.db)

    def digest(self):
        """A digest of every row of every table (DbDigest)."""
        if self._digest is None:
            self._digest = DbDigest(self.pg, self.db)
        return self._digest()

    def close(self):
        """Peers quit (status 0), dird stopped (status 0)."""
        problems = []
        for p in self.peers:
            rc = p.stop()
            if rc not in (0, None):
                problems.append(f"{p.userid}'s dchat exited {rc}")
        if self._digest is not None:
            self._digest.close()
        if self.d is not None:
            rc = self.d.stop()
            if rc != 0:
                problems.append(f"dird exited {rc}: {self.d.read_log()}")
        assert not problems, "\n".join(problems)


@pytest.fixture
def reg(pg, tmpdir_shared, build, request):
    """A registry for one test.  A test module may set REG_SETTINGS, the
    `--set` values its dird runs with, and REG_START = False for a data
    directory and database without a dird."""
    r = Registry(pg, tmpdir_shared,
                 settings=getattr(request.module, "REG_SETTINGS", ()),
                 start=getattr(request.module, "REG_START", True))
    yield r
    r.close()


@pytest.fixture
def registry(pg, tmpdir_shared, build):
    """Make registries: registry(*settings, debug=False, start=True),
    each in a directory of its own; all closed at the end."""
    made = []

    def make(*settings, **kw):
        base = os.path.join(tmpdir_shared, f"r{len(made)}")
        os.mkdir(base)
        os.chmod(base, 0o755)
        made.append(Registry(pg, base, settings=settings, **kw))
        return made[-1]
    yield make
    problems = []
    for r in made:
        try:
            r.close()
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n".join(problems)


# ---- dchat ------------------------------------------------------------------


class Peer:
    """One dchat home; run() starts a `dchat run --json` process whose
    events are read by a thread of their own."""

    def __init__(self, reg, userid, home, prefix=()):
        self.reg = reg
        self.prefix = list(prefix)
        self.userid = userid
        self.home = home
        self.proc = None
        self.events = []
        self.lines = []  # stdout exactly as written, one JSON line each
        self.cond = threading.Condition()
        self.port = None
        self.errlog = None

    def __repr__(self):
        return f"<dchat of {self.userid}>"

    def dchat(self, *args, check=True, timeout=120, input=None):
        """A one-shot dchat command (init, send, lookup, ...)."""
        p = run(self.prefix + [dchat_path(), "--home", self.home, *args],
                check=False, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"dchat {args} exited {p.returncode}\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p

    def init(self, code):
        return self.dchat("init", "--server", self.reg.d.url, "--user",
                          self.userid, "--code", code, "--ca-fingerprint",
                          self.reg.fingerprint)

    @property
    def key(self):
        return os.path.join(self.home, "key.pem")

    @property
    def cert(self):
        return os.path.join(self.home, "cert.pem")

    def run(self, port=None, advertise=None, extra=(), registered=True,
            argv=None):
        """`dchat run --json` listening on 127.0.0.1:port (a free one by
        default); argv replaces the whole command line."""
        self.port = port or free_port()
        adv = advertise or f"127.0.0.1:{self.port}"
        self.events = []
        self.lines = []
        if argv is None:
            argv = self.prefix + [
                dchat_path(), "--home", self.home, "run", "--json",
                "--listen", f"127.0.0.1:{self.port}", "--advertise", adv,
                *extra]
        # Standard error to a file: a pipe nobody reads could fill.
        self.errlog = os.path.join(
            os.path.dirname(self.home.rstrip("/")),
            f"{os.path.basename(self.home.rstrip('/'))}-"
            f"{uuid.uuid4().hex[:8]}.err")
        err = open(self.errlog, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=err, text=True, bufsize=1)
        err.close()
        started(self)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait("ready")
        if registered:
            self.wait("registered")
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "garbage", "line": line}
            with self.cond:
                self.events.append(ev)
                self.lines.append(line)
                self.cond.notify_all()

    def cmd(self, **kw):
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()

    def wait(self, event, timeout=30, start=0, **fields):
        """The first event named `event` (with these fields) at or after
        index start."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for ev in self.events[start:]:
                    if ev.get("event") == event and all(
                            ev.get(k) == v for k, v in fields.items()):
                        return ev
                left = deadline - time.time()
                if left <= 0 or (self.proc.poll() is not None and
                                 not self.reader.is_alive()):
                    raise AssertionError(
                        f"{self.userid}: no {event} {fields}; events: "
                        f"{self.events}\nstderr: {self.stderr_text()}")
                self.cond.wait(min(left, 0.5))

    def has(self, event, **fields):
        with self.cond:
            return [ev for ev in self.events if ev.get("event") == event
                    and all(ev.get(k) == v for k, v in fields.items())]

    def mark(self):
        with self.cond:
            return len(self.events)

    def stderr_text(self):
        if self.errlog is None or not os.path.exists(self.errlog):
            return ""
        with open(self.errlog, errors="replace") as f:
            return f.read()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """quit, as typed; its exit status.  Standard error is read for
        sanitizer findings."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            try:
                self.cmd(cmd="quit")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        assert_clean(self.stderr_text(), repr(self))
        return rc

    def finish(self):
        if self.proc is not None:
            self.stop()
        return self.stderr_text()


def people(reg, *names):
    """Peers for these first names, enrolled at reg (user@example.org)."""
    return [reg.person(f"{n}@{DOMAIN}", n.title()) for n in names]


def call(a, b, **kw):
    """a calls b (running with --auto-accept); both see 'connected'."""
    ma, mb = a.mark(), b.mark()
    a.cmd(cmd="call", user=b.userid)
    ca = a.wait("connected", start=ma, **kw)
    cb = b.wait("connected", start=mb)
    return ca, cb


class Lines:
    """The lines a process writes to a pipe, read by a thread of their
    own, so that waiting for one has a deadline."""

    def __init__(self, pipe):
        self.q = queue.Queue()
        self.seen = []
        self.ended = False
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe):
        for line in pipe:
            self.q.put(line)
        self.q.put(None)

    def _next(self, deadline):
        left = deadline - time.monotonic()
        try:
            line = self.q.get(timeout=max(left, 0))
        except queue.Empty:
            raise AssertionError("no line in time; so far: "
                                 + "".join(self.seen)) from None
        if line is None:
            self.ended = True
        else:
            self.seen.append(line)
        return line

    def until(self, pred, timeout=30):
        """The first line from here on for which pred holds."""
        deadline = time.monotonic() + timeout
        while True:
            line = None if self.ended else self._next(deadline)
            assert line is not None, "the output ended: " + "".join(
                self.seen)
            if pred(line):
                return line

    def rest(self, timeout=30):
        """Everything the program wrote, once it closed the pipe."""
        deadline = time.monotonic() + timeout
        while not self.ended:
            self._next(deadline)
        return "".join(self.seen)


class Terminal:
    """`dchat run` without --json on a pseudo-terminal: a person reads
    what it prints and types lines.  The terminal is an xterm of
    ROWS x COLUMNS, whatever the suite runs in, so that what the line
    editor writes is the same everywhere."""

    ROWS, COLUMNS = 40, 120
    # What the line editor writes to take the prompt and the line being
    # typed off the screen before dchat prints (to column 0, clear to
    # the end of the screen): the only control dchat writes of its own
    # while a person does not edit.
    HIDE = b"\r\x1b[J"

    def __init__(self, peer, port, extra=(), env=None):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", self.ROWS, self.COLUMNS, 0, 0))
        self.proc = subprocess.Popen(
            [dchat_path(), "--home", peer.home, "run", "--listen",
             f"127.0.0.1:{port}", "--advertise", f"127.0.0.1:{port}",
             *extra],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            env={**os.environ, "TERM": "xterm", **(env or {})})
        os.close(slave)
        self.out = b""
        started(self)

    def __repr__(self):
        return "<dchat on a terminal>"

    def read_until(self, needle, timeout=30):
        """Everything printed so far, once it holds needle (bytes)."""
        return self._read_until(lambda: needle in self.out, needle,
                                timeout)

    def screen_until(self, cond, timeout=30):
        """The screen (Screen) once cond(screen) holds."""
        try:
            self._read_until(lambda: cond(self.screen()), "the screen",
                             timeout)
        except AssertionError:
            raise AssertionError(
                f"the screen is not as expected:\n{self.screen().text()}"
                f"\n{self.out[-2000:]!r}") from None
        return self.screen()

    def screen(self):
        """What a person sees now."""
        return Screen(self.ROWS, self.COLUMNS, self.out)

    def _read_until(self, done, what, timeout):
        deadline = time.time() + timeout
        while not done():
            left = deadline - time.time()
            assert left > 0, (what, self.out)
            r, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if not r:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the program is gone
                chunk = b""
            assert chunk, (what, self.out)
            self.out += chunk
        return self.out

    def type(self, line):
        """A line as typed: Enter sends a carriage return."""
        os.write(self.master, line.encode() + b"\r")

    def keys(self, data):
        """Keys as a terminal sends them (bytes: "\\x1b[A" is Up)."""
        os.write(self.master, data)

    def running(self):
        return self.master is not None and self.proc.poll() is None

    def close(self):
        if self.master is None:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.type("quit")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            while True:
                r, _, _ = select.select([self.master], [], [], 0)
                if not r:
                    break
                chunk = os.read(self.master, 65536)
                if not chunk:
                    break
                self.out += chunk
        except OSError:
            pass
        os.close(self.master)
        self.master = None
        assert_clean(self.out, repr(self))
        return self.proc.returncode

    def finish(self):
        self.close()
        return self.out


class Screen:
    """The rows of a terminal once `out` was written to it, as a person
    reads them: text, carriage returns, newlines and backspaces, and the
    few sequences of an xterm that a line editor moves and clears with.
    Any other control is not expected and fails the test.  rows are
    strings without trailing blanks; (row, col) is the cursor."""

    CSI = re.compile(r"\x1b\[([0-9;?]*)([@-~])")

    def __init__(self, nrows, ncols, out):
        self.ncols = ncols
        self.grid = [[" "] * ncols for _ in range(nrows)]
        self.row = self.col = 0
        self.insert = False
        text = out.decode(errors="replace")
        i = 0
        while i < len(text):
            c = text[i]
            i += 1
            if c == "\x1b":
                m = self.CSI.match(text, i - 1)
                assert m, f"a control the test does not know: " \
                    f"{text[i - 1:i + 10]!r}"
                self._csi(m.group(1), m.group(2))
                i = m.end()
            elif c == "\r":
                self.col = 0
            elif c == "\n":
                self._down()
            elif c == "\b":
                self.col = max(self.col - 1, 0)
            elif c == "\x07":
                pass  # the bell
            else:
                assert c >= " ", f"a control the test does not know: {c!r}"
                self._put(c)
        self.rows = ["".join(r).rstrip() for r in self.grid]

    def _down(self):
        if self.row == len(self.grid) - 1:
            del self.grid[0]
            self.grid.append([" "] * self.ncols)
        else:
            self.row += 1

    def _put(self, c):
        if self.col == self.ncols:  # the margin: wrap first
            self.col = 0
            self._down()
        line = self.grid[self.row]
        if self.insert:
            line.insert(self.col, c)
            del line[-1]
        else:
            line[self.col] = c
        self.col += 1

    def _csi(self, params, final):
        n = int(params) if params.isdigit() else None
        line = self.grid[self.row]
        if final == "A":
            self.row = max(self.row - (n or 1), 0)
        elif final == "B":
            self.row = min(self.row + (n or 1), len(self.grid) - 1)
        elif final == "C":
            self.col = min(self.col + (n or 1), self.ncols - 1)
        elif final == "D":
            self.col = max(self.col - (n or 1), 0)
        elif final == "G":
            self.col = min((n or 1) - 1, self.ncols - 1)
        elif final == "K" and not params:
            line[self.col:] = [" "] * (self.ncols - self.col)
        elif final == "J" and not params:
            line[self.col:] = [" "] * (self.ncols - self.col)
            for r in self.grid[self.row + 1:]:
                r[:] = [" "] * self.ncols
        elif final == "@":
            for _ in range(n or 1):
                line.insert(self.col, " ")
                del line[-1]
        elif final == "P":
            for _ in range(n or 1):
                del line[self.col]
                line.append(" ")
        elif final in "hl" and params == "4":
            self.insert = final == "h"
        else:
            raise AssertionError(f"a control the test does not know: "
                                 f"ESC [ {params} {final}")

    def text(self):
        """The rows up to the last that is not empty, one string."""
        rows = list(self.rows)
        while rows and not rows[-1]:
            rows.pop()
        return "\n".join(rows)


def peer_client_ctx(peer):
    """A PeerTLS client context for peer (python ssl).  Python can check a
    TLS server only for the server purpose, and user certificates are made
    for TLS client use alone (docs/peertls.md), so the listener's
    certificate is checked after the handshake by check_peer_cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(peer.cert, peer.key)
    ctx.set_alpn_protocols(["dchat/1"])
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check_peer_cert(peer, tls):
    """The listener's certificate chains to peer's CA for the purpose
    PeerTLS checks (openssl verify -purpose sslclient)."""
    pem = ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))
    path = os.path.join(peer.home, "listener.pem")
    with open(path, "w") as f:
        f.write(pem)
    run(["openssl", "verify", "-purpose", "sslclient", "-CAfile",
         os.path.join(peer.home, "ca.pem"), path])


# ---- the summary ----------------------------------------------------------------

# How many cases tests/integration/test_badinput.py ran; printed in the
# summary so that CI (pytest -q, no -s) shows it.
BADINPUT_CASES = pytest.StashKey[int]()


# ---- DNS --------------------------------------------------------------------


class NameServer:
    """Knot DNS (knotd) serving zones on 127.0.0.1:port over UDP and TCP,
    as a domain's name server does; the resolvers under test are pointed
    at it (server, "127.0.0.1@PORT").

    zones: {domain: (records, signed)}, records as zone-file lines
    relative to the domain (SOA and NS are added).  A signed zone gets a
    new key and DNSSEC signatures on load; anchor(domain) writes its DS
    records to a file, the trust anchor a validating resolver needs."""

    def __init__(self, workdir, zones):
        self.dir = os.path.join(workdir, "knot")
        os.makedirs(os.path.join(self.dir, "db"))
        self.port = free_port()
        self.server = f"127.0.0.1@{self.port}"
        self.conf = os.path.join(self.dir, "knot.conf")
        self.zones = zones
        self._write_conf()
        knotd = shutil.which("knotd") or "/usr/sbin/knotd"
        self.log = os.path.join(self.dir, "knotd.log")
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen([knotd, "-c", self.conf],
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT)
        started(self)
        for z in zones:
            wait_until(lambda z=z: f"[{z}.] loaded, serial" in
                       self.read_log() or self.proc.poll() is not None,
                       f"knotd to load {z}", timeout=30)
            assert self.proc.poll() is None, self.read_log()

    def _write_conf(self):
        zones = ""
        for z, (records, signed) in self.zones.items():
            with open(os.path.join(self.dir, f"{z}.zone"), "w") as f:
                f.write(f"$ORIGIN {z}.\n$TTL 60\n"
                        f"@ SOA ns.{z}. admin.{z}. 1 3600 600 86400 60\n"
                        f"@ NS ns.{z}.\nns A 127.0.0.1\n{records}\n")
            zones += f"  - domain: {z}\n"
            if signed:
                zones += "    dnssec-signing: on\n    dnssec-policy: test\n"
        with open(self.conf, "w") as f:
            f.write(f"""server:
    rundir: "{self.dir}"
    listen: 127.0.0.1@{self.port}
database:
    storage: "{self.dir}/db"
log:
  - target: stderr
    any: info
policy:
  - id: test
    algorithm: ecdsap256sha256
    ksk-lifetime: 0
    zsk-lifetime: 0
    single-type-signing: on
template:
  - id: default
    storage: "{self.dir}"
    file: "%s.zone"
    zonefile-sync: -1
zone:
{zones}""")

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def anchor(self, domain, path=None):
        """A file of domain's DS records: the trust anchor for its zone."""
        keymgr = shutil.which("keymgr") or "/usr/sbin/keymgr"
        ds = run([keymgr, "-c", self.conf, domain, "ds"]).stdout
        assert " DS " in ds, ds
        path = path or os.path.join(self.dir, f"{domain}.ds")
        with open(path, "w") as f:
            f.write(ds)
        return path

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def start(self):
        """knotd again, on the same port with the same zones, after stop."""
        assert not self.running()
        knotd = shutil.which("knotd") or "/usr/sbin/knotd"
        before = {z: self.read_log().count(f"[{z}.] loaded, serial")
                  for z in self.zones}
        self.proc = subprocess.Popen([knotd, "-c", self.conf],
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT)
        for z, n in before.items():
            wait_until(lambda z=z, n=n: self.read_log().count(
                f"[{z}.] loaded, serial") > n or self.proc.poll() is not None,
                f"knotd to load {z} again", timeout=30)
            assert self.proc.poll() is None, self.read_log()

    def finish(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return ""

    def __repr__(self):
        return f"<knotd on {self.server}>"


def dnsq(*args, server=None, anchor=None, timeout_ms=None):
    """tests/unit/dnsq (irp_dns.h): (exit status, its JSON answer)."""
    argv = [os.path.join(BUILD, "tests", "unit", "dnsq")]
    if server:
        argv += ["--server", server]
    if anchor:
        argv += ["--anchor", anchor]
    if timeout_ms:
        argv += ["--timeout", str(timeout_ms)]
    p = run(argv + list(args), check=False)
    return p.returncode, json.loads(p.stdout)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    n = config.stash.get(BADINPUT_CASES, None)
    if n is not None:
        terminalreporter.write_line(f"bad-input cases: {n}")
    skipped = terminalreporter.stats.get("skipped", [])
    terminalreporter.write_line(f"skipped: {len(skipped)}")
    for rep in skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else ""
        terminalreporter.write_line(f"  skipped {rep.nodeid}: {reason}")
