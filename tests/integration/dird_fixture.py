"""Start real dird processes on a real PostgreSQL, and talk to them with
curl and openssl as a user would."""
import json
import os
import socket
import ssl
import subprocess
import time

from conftest import BUILD
from helpers import openssl, run


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def dirctl(data, *args, check=True):
    return run([os.path.join(BUILD, "dirctl", "dirctl"), "--data", data,
                *args], check=check)


class Dird:
    """One dird process on 127.0.0.1:port."""

    def __init__(self, data, port=None, dsn=None, extra=()):
        self.data = data
        self.port = port or free_port()
        # /metrics needs an administrator's certificate on the IRP port;
        # tests read it from a metrics listener of their own.
        self.metrics_port = free_port()
        self.dsn = dsn
        self.extra = list(extra)
        self.proc = None
        self.log = os.path.join(data, f"dird-{self.port}.log")

    def start(self):
        argv = [os.path.join(BUILD, "dird", "dird"), "--data", self.data,
                "--listen", f"127.0.0.1:{self.port}", "--set",
                f"metrics_listen=127.0.0.1:{self.metrics_port}"] + self.extra
        if self.dsn:
            argv += ["--dsn", self.dsn]
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        # Ready once every listener accepts: the metrics one opens after
        # the IRP port.
        deadline = time.time() + 60
        ports = [self.port, self.metrics_port]
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dird exited: " + self.read_log())
            try:
                while ports:
                    socket.create_connection(("127.0.0.1", ports[0]),
                                             0.2).close()
                    ports.pop(0)
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("dird did not start: " + self.read_log())

    def metrics(self):
        """The Prometheus text of /metrics, from the metrics listener."""
        import urllib.request
        with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics",
                timeout=30) as r:
            return r.read().decode()

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

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
    User, presents its certificate."""
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
    """A person with a key and, after enrol(), a certificate."""

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
