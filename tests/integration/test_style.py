"""Machine-checked rules of STYLE.md: banned functions, SQL only in db.c."""
import glob
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
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
