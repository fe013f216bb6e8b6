"""Run the C unit test programs (also registered with meson test)."""
import glob
import os
import re
import subprocess

import pytest

from conftest import BUILD

UNITS = sorted(os.path.basename(p) for p in
               glob.glob(os.path.join(os.path.dirname(__file__), "..",
                                      "unit", "test_*.c")))

RESULT = re.compile(r"(not )?ok\b")
PLAN = re.compile(r"1\.\.([0-9]+)$")


@pytest.mark.parametrize("name", [u[:-2] for u in UNITS])
def test_unit(name, tmp_path):
    exe = os.path.join(BUILD, "tests", "unit", name)
    assert os.access(exe, os.X_OK), f"{exe} not built"
    p = subprocess.run([exe], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    # Lines as TAP has them: split at "\n" only, not at what
    # str.splitlines also takes for a line end.
    lines = p.stdout.split("\n")
    results = [ln for ln in lines if RESULT.match(ln)]
    plans = [m.group(1) for m in map(PLAN.match, lines) if m]
    assert len(plans) == 1, f"one 1..N plan line, got {plans}\n{p.stdout}"
    assert int(plans[0]) == len(results), \
        f"plan 1..{plans[0]} but {len(results)} results\n{p.stdout}"
    assert results, "it checked something"
    assert not any(ln.startswith("not ok") for ln in results), p.stdout
