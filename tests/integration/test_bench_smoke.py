"""tests/bench/run --quick against the build under test: every row of the
benchmark table is produced, with a number for the figure and for its
baseline.  No timing is asserted: the benchmark is a measurement, and this
only keeps it from rotting."""
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT

# The row ids tests/bench/run promises, in --quick and full runs alike.
ROWS = (
    [f"lookup_{n}_{f}" for n in (1, 16, 64) for f in ("rps", "p50", "p99")]
    + ["update_64_rps", "update_64_p99", "update_64_group",
       "update_64_vs_alone", "enrol_cps", "enrol_vs_commits",
       "enrol_vs_serial_commits",
       "newconn_cps", "fed_cold_ms", "fed_fresh_p50", "fed_cached_p50",
       "fed_cached_rps", "inbox_post_rps", "inbox_fetch_rps",
       "dchat_file_mbps", "dchat_rtt_p50", "dchat_rtt_p99",
       "tcp_rtt_c_p50"]
    + [f"scale{tag}_{i}_{f}" for tag in ("", "_nocache") for i in range(3)
       for f in ("p50", "p99")]
    + [f"scale_{i}_hits" for i in range(3)] + ["scale_cache_bytes"]
    + ["memory_idle_rss", "memory_idle_per_conn", "idle_lookup_rps",
       "idle_lookup_p99"]
    + ["soak_refresh_rps", "soak_refresh_p99", "soak_lookup_p50",
       "soak_lookup_p99", "soak_errors", "soak_dird_cpu", "soak_pg_cpu",
       "soak_loadgen_cpu", "soak_dird_rss", "soak_pg_pss"])


# Under AddressSanitizer everything is several times slower and a "quick"
# run takes minutes; the plain builds cover what this test checks.
@pytest.mark.skipif("asan" in BUILD, reason="too slow under ASan")
def test_bench_quick(tmp_path):
    out = tmp_path / "bench.json"
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "bench", "run"),
         "--quick", "--build", BUILD, "--json", str(out)],
        capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    doc = json.loads(out.read_text())
    rows = {r["id"]: r for r in doc["results"]}
    assert set(rows) == set(ROWS), sorted(set(rows) ^ set(ROWS))
    for rid, r in rows.items():
        for k in ("value", "baseline", "ratio"):
            v = r[k]
            assert isinstance(v, (int, float)) and math.isfinite(v) \
                and v > 0, (rid, k, r)
        assert r["target"], rid
        assert r["met"] in (True, False, None), rid
        # The printed table names every row too.
        assert r["measurement"] in p.stdout, rid
