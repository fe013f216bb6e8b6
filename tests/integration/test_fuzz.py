"""Run every libFuzzer target of tests/fuzz for a short time.

The targets are built by a clang build with -Dfuzz=true (scripts/test
sets one up and exports its directory as DIR_FUZZ_BUILD).  Each runs
about 10 s on a copy of its seed corpus under ASan and UBSan; a crash, a
sanitizer report, a leak or a broken property fails the test.  The
executions are reported (junit property "executions", and printed).
scripts/fuzz runs the same targets for as long as you like.

Without DIR_FUZZ_BUILD (e.g. the --sanitize run, which is gcc) there is
nothing to run and the tests skip; with it, a missing target fails.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
FUZZ_BUILD = os.environ.get("DIR_FUZZ_BUILD")
SECONDS = int(os.environ.get("DIR_FUZZ_SECONDS", "10"))
TARGETS = sorted(os.path.basename(p)[:-2] for p in
                 glob.glob(os.path.join(ROOT, "tests", "fuzz", "fuzz_*.c")))


def test_every_target_has_a_seed_corpus():
    assert len(TARGETS) >= 6, TARGETS
    for t in TARGETS:
        seeds = glob.glob(os.path.join(CORPUS, t[len("fuzz_"):], "*"))
        assert 3 <= len(seeds) <= 100, (t, len(seeds))


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(target, tmp_path, record_property):
    if not FUZZ_BUILD:
        pytest.skip("no fuzz build (DIR_FUZZ_BUILD is not set)")
    exe = os.path.join(FUZZ_BUILD, "tests", "fuzz", target)
    assert os.access(exe, os.X_OK), f"{exe} not built"
    corpus = tmp_path / "corpus"
    shutil.copytree(os.path.join(CORPUS, target[len("fuzz_"):]), corpus)
    seeds = len(os.listdir(corpus))
    env = dict(os.environ,
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:"
                            "halt_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    p = subprocess.run(
        [exe, f"-max_total_time={SECONDS}", "-print_final_stats=1",
         "-timeout=10", "-rss_limit_mb=2048",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=SECONDS + 120)
    crashes = [f for f in os.listdir(tmp_path)
               if f.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    tail = p.stderr[-6000:]
    assert p.returncode == 0 and not crashes, (crashes, tail)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
    assert m, tail
    runs = int(m.group(1))
    record_property("executions", runs)
    print(f"{target}: {runs} executions in {SECONDS} s, "
          f"corpus {seeds} -> {len(os.listdir(corpus))}")
    # Every seed was run, and then the fuzzer really mutated: the slowest
    # target (CSR signatures) does thousands a second.
    assert runs >= max(1000, 100 * SECONDS), tail
