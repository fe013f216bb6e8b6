"""Machine-checked rules of the house: banned functions, SQL only in db.c,
which folder may use which (docs/design.md), and test code that pyflakes
finds clean."""
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


# ---- layering -----------------------------------------------------------

# Which folder may not use which (docs/design.md, "What may include
# what"): the CA library knows nothing of the registry, the protocol or
# the peer; irp/ is shared by both sides and knows neither program;
# dchat (client/) reaches dird only through IRP; dird and dirctl never
# use dchat's code.
LAYERS = ("ca", "irp", "dird", "dirctl", "client")
FORBIDDEN = {
    "ca": {"irp", "dird", "dirctl", "client"},
    "irp": {"dird", "dirctl", "client"},
    "client": {"dird", "dirctl"},
    "dird": {"client"},
    "dirctl": {"client"},
}
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)


def include_edges():
    """(file, header, folder of the header) for every quoted #include of a
    .c or .h file of LAYERS that names a header of another of LAYERS.  A
    header is known by its name: the folder that holds a header of that
    name (the including file's own folder first, as the preprocessor
    looks there first), or the path when the include gives one."""
    held = {}
    for layer in LAYERS:
        for path in glob.glob(os.path.join(ROOT, layer, "*.h")):
            held.setdefault(os.path.basename(path), set()).add(layer)
    edges = []
    for layer in LAYERS:
        for path in sorted(glob.glob(os.path.join(ROOT, layer, "*.[ch]"))):
            with open(path) as f:
                names = INCLUDE.findall(f.read())
            for name in names:
                near = os.path.normpath(os.path.join(os.path.dirname(path),
                                                     name))
                if "/" in name and os.path.exists(near):
                    where = {os.path.relpath(near, ROOT).split(os.sep)[0]}
                elif layer in held.get(os.path.basename(name), ()):
                    where = {layer}
                else:
                    where = held.get(os.path.basename(name), set())
                for other in sorted(where - {layer}):
                    edges.append((os.path.relpath(path, ROOT), name, other))
    return edges


def test_folders_include_only_what_they_may():
    edges = include_edges()
    # The resolver finds the uses that are allowed, so a pass is not
    # an empty search.
    used = {(f.split("/")[0], other) for f, _, other in edges}
    assert {("dird", "ca"), ("dird", "irp"), ("client", "ca"),
            ("client", "irp"), ("dirctl", "dird")} <= used, sorted(used)
    bad = [f"{f} includes {name} of {other}/" for f, name, other in edges
           if other in FORBIDDEN[f.split("/")[0]]]
    assert not bad, bad


MESON_TARGET = re.compile(r"^(\w+)\s*=\s*(?:static_library|shared_library|"
                          r"library|declare_dependency|executable)\s*\(",
                          re.M)


def meson_edges():
    """(folder, what, folder it belongs to) for every use in a LAYERS
    meson.build of a library, dependency or program that another LAYERS
    meson.build defines, and of a path into another folder given to
    include_directories() or files()."""
    text, owner = {}, {}
    for layer in LAYERS:
        with open(os.path.join(ROOT, layer, "meson.build")) as f:
            text[layer] = re.sub(r"#[^\n]*", "", f.read())
        for name in MESON_TARGET.findall(text[layer]):
            owner[name] = layer
    edges = []
    for layer, code in text.items():
        for word in sorted(set(re.findall(r"\b\w+\b", code))):
            if owner.get(word, layer) != layer:
                edges.append((layer, word, owner[word]))
        for args in re.findall(r"\b(?:include_directories|files)\s*"
                               r"\(([^)]*)\)", code):
            for s in re.findall(r"'([^']*)'", args):
                top = os.path.normpath(os.path.join(layer, s)).split(
                    os.sep)[0]
                if top != layer:
                    edges.append((layer, s, top))
    return edges


def test_meson_gives_folders_only_what_they_may_use():
    edges = meson_edges()
    used = {(layer, other) for layer, _, other in edges}
    assert {("dird", "ca"), ("dird", "irp"), ("client", "ca"),
            ("client", "irp"), ("dirctl", "dird")} <= used, sorted(used)
    bad = [f"{layer}/meson.build uses {what} of {other}/"
           for layer, what, other in edges
           if other in FORBIDDEN[layer]]
    assert not bad, bad
