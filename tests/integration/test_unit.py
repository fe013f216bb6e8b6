"""Run the C unit test programs (also registered with meson test)."""
import glob
import os
import subprocess

import pytest

from conftest import BUILD

UNITS = sorted(os.path.basename(p) for p in
               glob.glob(os.path.join(os.path.dirname(__file__), "..",
                                      "unit", "test_*.c")))


@pytest.mark.parametrize("name", [u[:-2] for u in UNITS])
def test_unit(name, tmp_path):
    exe = os.path.join(BUILD, "tests", "unit", name)
    assert os.access(exe, os.X_OK), f"{exe} not built"
    p = subprocess.run([exe], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "\nok " in "\n" + p.stdout  # it checked something
    assert "not ok" not in p.stdout
