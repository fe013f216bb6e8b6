"""Machine-checked rules of the house: banned functions, SQL only in db.c,
and test code that pyflakes finds clean."""
import glob
import os
import re
import subprocess
import sys

from conftest import ROOT
BANNED = ["sprintf", "vsprintf", "strcpy", "strcat", "strtok", "atoi",
          "atol", "gets", "system"]


def sources():
    for pat in ("ca/*.[ch]", "irp/*.[ch]", "dird/*.[ch]", "dirctl/*.[ch]",
                "client/*.[ch]", "tests/unit/*.c", "tests/bench/*.c",
                "tests/fuzz/*.c"):
        yield from glob.glob(os.path.join(ROOT, pat))


def strip_comments_and_strings(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def test_no_banned_functions():
    found = []
    files = list(sources())
    assert files
    for path in files:
        with open(path) as f:
            code = strip_comments_and_strings(f.read())
        for fn in BANNED:
            if re.search(r"(?<![\w.>])" + fn + r"\s*\(", code):
                found.append(f"{os.path.relpath(path, ROOT)}: {fn}")
    assert not found, found


def test_libpq_only_in_db_c():
    users = [os.path.relpath(p, ROOT) for p in sources()
             if "libpq-fe.h" in open(p).read()]
    assert users == ["dird/db.c"], users


def test_the_tests_are_clean_python():
    """pyflakes on the suite's own code: an unused import or name is
    scaffolding left behind, an undefined one a test that cannot run."""
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "integration",
                                          "*.py")))
    assert len(files) > 10, files
    p = subprocess.run([sys.executable, "-m", "pyflakes", *files],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and not p.stdout, p.stdout + p.stderr


def test_every_import_of_the_tests_resolves():
    """An import inside a test function runs only with that test: one that
    names a module no longer there (a helper file folded into conftest.py)
    fails late and alone.  Every import statement, at any depth, must
    name a module that exists."""
    import ast
    import importlib.util
    here = os.path.join(ROOT, "tests", "integration")
    missing = []
    sys.path.insert(0, here)
    try:
        for path in sorted(glob.glob(os.path.join(here, "*.py"))):
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if importlib.util.find_spec(top) is None:
                        missing.append(f"{os.path.basename(path)}:"
                                       f"{node.lineno}: {name}")
    finally:
        sys.path.remove(here)
    assert not missing, missing
