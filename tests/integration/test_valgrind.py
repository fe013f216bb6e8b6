"""Run each C unit test program under valgrind memcheck.

Any invalid read or write, use of uninitialised memory, or definite or
indirect leak fails the test (valgrind exits 1).  Skipped in the
sanitizer build: ASan's runtime and valgrind can not share a process.

test_ca generates RSA keys, which takes minutes under valgrind (one
2048-bit key is about 45 s here), so by default it runs with
TEST_CA_NO_RSA=1 (its RSA keys are made as EC P-256: every other path of
ca/ is still checked); DIR_VALGRIND_SLOW=1 runs it whole.  The other
programs take a few seconds each.
"""
import glob
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, uses_asan

# test_sandbox installs a seccomp filter, which valgrind, running the
# program's system calls as its own, can not live under.
UNITS = sorted(os.path.basename(p)[:-2] for p in
               glob.glob(os.path.join(os.path.dirname(__file__), "..",
                                      "unit", "test_*.c"))
               if not p.endswith("/test_sandbox.c"))
SLOW = {"test_ca"}


@pytest.mark.parametrize("name", UNITS)
def test_unit_under_valgrind(name, tmp_path):
    exe = os.path.join(BUILD, "tests", "unit", name)
    assert os.access(exe, os.X_OK), f"{exe} not built"
    if uses_asan(exe):
        pytest.skip("AddressSanitizer build: valgrind can not run it")
    env = dict(os.environ)
    if name in SLOW and os.environ.get("DIR_VALGRIND_SLOW") != "1":
        env["TEST_CA_NO_RSA"] = "1"
    valgrind = shutil.which("valgrind")
    assert valgrind, "valgrind is not installed; run scripts/deps"
    p = subprocess.run(
        [valgrind, "--leak-check=full", "--error-exitcode=1",
         "--errors-for-leak-kinds=definite,indirect", exe],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
        env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-6000:]
    assert "ERROR SUMMARY: 0 errors" in p.stderr, p.stderr[-6000:]
    assert "definitely lost: 0" in p.stderr or \
        "All heap blocks were freed" in p.stderr, p.stderr[-6000:]
    # The program really ran its checks.
    assert "\nok " in "\n" + p.stdout and "not ok" not in p.stdout
