"""Helpers for driving dirctl and the interop tools from tests."""
import os
import subprocess

from conftest import BUILD


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
