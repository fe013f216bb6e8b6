"""Helpers for driving dirctl and the interop tools from tests."""
import os
import subprocess

from conftest import BUILD, ROOT

# The newest migration in schema/ (NNN_name.sql): what "migrate" reaches.
SCHEMA_VERSION = max(int(f.split("_")[0]) for f in
                     os.listdir(os.path.join(ROOT, "schema"))
                     if f.endswith(".sql"))


def dirctl_path():
    return os.path.join(BUILD, "dirctl", "dirctl")


def run(argv, check=True, input=None, env=None):
    """Run a command, returning CompletedProcess with text output."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(argv, capture_output=True, text=True, input=input,
                       env=e, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{argv} exited {p.returncode}\nstdout: {p.stdout}\n"
            f"stderr: {p.stderr}")
    return p


def openssl(*args, check=True, input=None):
    return run(["openssl", *args], check=check, input=input)


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
