"""Machine-checked rules of the house: banned functions, SQL only in db.c,
which folder may use which (docs/design.md), C laid out as .clang-format
says, and test code that pyflakes finds clean."""
import glob
import os
import re
import shutil
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


# ---- clang-format -------------------------------------------------------

# The C files that did not conform to .clang-format when it was added.
# They stay as written until someone reformats them (others were editing
# them), and this list must only shrink: a file that conforms must leave
# it (the test below says so), and no file may join it, so every new file
# and every file not listed conforms.
#
# Why so many: .clang-format states the house style (KNF) as far as
# clang-format 14 can, but not these rules of the code as written.
#   - A continuation line is indented four columns from the start of the
#     statement, however deep the call it continues; clang-format indents
#     four from the start of the innermost unfinished call.
#   - The pieces of a concatenated string literal continue at that same
#     indentation, and the next argument follows the last piece on its
#     line; clang-format aligns every piece under the first and gives a
#     multi-line string's neighbours lines of their own.
#   - A trailing comment (struct members, enumerators, #define values)
#     starts at the next tab stop after its code; clang-format aligns a
#     run of them one column after the longest.
#   - Lines are broken where the sense breaks them, not filled to the
#     80th column; clang-format fills every line.
#   - Some goto labels are indented by one space (" err:"), others not.
#   - The SQL of dird/db.c interleaves string literals with EPOCH(...)
#     macro calls, which clang-format lays out as nested calls.
#   - Some lines are longer than 80 columns.
NOT_YET_FORMATTED = {
    "ca/ca.h",
    "ca/ca_create.c",
    "ca/ca_crl.c",
    "ca/ca_csr.c",
    "ca/ca_info.c",
    "ca/ca_internal.h",
    "ca/ca_issue.c",
    "ca/ca_key.c",
    "ca/ca_ocsp.c",
    "ca/ca_p12.c",
    "ca/ca_util.c",
    "client/dial.c",
    "client/edit.c",
    "client/frame.h",
    "client/keystore.c",
    "client/keystore.h",
    "client/main.c",
    "client/peertls.c",
    "client/peertls.h",
    "client/peertls_internal.h",
    "client/run.c",
    "client/session.c",
    "client/session.h",
    "client/ui.c",
    "client/vis.c",
    "dirctl/dirctl.c",
    "dird/api.h",
    "dird/api_admin.c",
    "dird/api_backup.c",
    "dird/api_enroll.c",
    "dird/api_me.c",
    "dird/api_ocsp.c",
    "dird/api_util.c",
    "dird/auth.c",
    "dird/cache.c",
    "dird/cache.h",
    "dird/conf.c",
    "dird/conf.h",
    "dird/db.c",
    "dird/db.h",
    "dird/http.c",
    "dird/http.h",
    "dird/limit.c",
    "dird/limit.h",
    "dird/main.c",
    "dird/metrics.c",
    "dird/metrics.h",
    "dird/pgembed.c",
    "dird/pgembed.h",
    "dird/reg.c",
    "dird/reg.h",
    "dird/sdnotify.c",
    "irp/irp_client.c",
    "irp/irp_client.h",
    "irp/irp_userid.c",
    "tests/bench/loadgen.c",
    "tests/bench/pingpong.c",
    "tests/fuzz/fuzz.h",
    "tests/fuzz/fuzz_basic.c",
    "tests/fuzz/fuzz_csr.c",
    "tests/fuzz/fuzz_irp_reply.c",
    "tests/fuzz/fuzz_keystore.c",
    "tests/fuzz/fuzz_msg.c",
    "tests/fuzz/fuzz_ocsp.c",
    "tests/fuzz/fuzz_peer.c",
    "tests/fuzz/fuzz_request.c",
    "tests/fuzz/fuzz_userid.c",
    "tests/unit/test_ca.c",
    "tests/unit/test_cache.c",
    "tests/unit/test_client.c",
    "tests/unit/test_conf.c",
    "tests/unit/test_frame.c",
    "tests/unit/test_limit.c",
    "tests/unit/test_userid.c",
}


def c_sources_everywhere():
    """Every .c and .h file of the tree, relative to ROOT, but those in
    hidden directories and in build directories (meson writes C there)."""
    found = []
    for top, dirs, files in os.walk(ROOT):
        if "build.ninja" in files or "meson-private" in dirs:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and
                         not (top == ROOT and (d == "build" or
                                               d.startswith("build-"))))
        found += [os.path.relpath(os.path.join(top, f), ROOT)
                  for f in files if f.endswith((".c", ".h"))]
    return sorted(found)


def clang_format_dry_run(files):
    """(exit status, the files it would change, its report)."""
    exe = shutil.which("clang-format")
    assert exe, "clang-format is missing: scripts/deps installs it"
    p = subprocess.run([exe, "--style=file:" + os.path.join(ROOT,
                                                            ".clang-format"),
                        "--dry-run", "-Werror", *files], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    changed = {m.group(1) for m in
               re.finditer(r"^(\S+?):\d+:\d+: (?:error|warning):",
                           p.stderr, re.M)}
    return p.returncode, changed, p.stderr


def test_c_sources_are_clang_formatted():
    files = c_sources_everywhere()
    assert len(files) > 90, files
    check = [f for f in files if f not in NOT_YET_FORMATTED]
    rc, changed, report = clang_format_dry_run(check)
    version = subprocess.run(["clang-format", "--version"],
                             capture_output=True, text=True).stdout.strip()
    assert rc == 0 and not changed, (
        f"{sorted(changed)} do not conform to .clang-format ({version}); "
        f"run clang-format -i on them\n" + report[:4000])


def test_the_unformatted_list_only_shrinks():
    missing = sorted(f for f in NOT_YET_FORMATTED
                     if not os.path.exists(os.path.join(ROOT, f)))
    assert not missing, f"gone, take them off NOT_YET_FORMATTED: {missing}"
    rc, changed, _ = clang_format_dry_run(sorted(NOT_YET_FORMATTED))
    conforming = sorted(NOT_YET_FORMATTED - changed)
    assert not conforming, ("these conform now, take them off "
                            f"NOT_YET_FORMATTED: {conforming}")


# ---- dchat's shape ------------------------------------------------------

# client/ dispatches through tables and enums, the loop reports to its
# face through struct app_face, and struct session is opaque: the rules
# of the issue "typed dchat", kept from coming back.

def c_code(text):
    """text without its comments, line numbers kept."""
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"),
                  text, flags=re.S)


def c_functions(text):
    """(name, first line, lines, text) of every function definition laid
    out as the house style (and .clang-format) has it: the name at the
    start of a line, the body from a "{" alone on a line to the next "}"
    alone on a line.  lines counts from the name to that brace."""
    lines = c_code(text).split("\n")
    found, i = [], 0
    while i < len(lines):
        m = re.match(r"([A-Za-z_]\w*)\(", lines[i])
        j = i
        while m and j < len(lines) and lines[j] != "{" and \
                not lines[j].rstrip().endswith(";"):
            j += 1
        if not m or j == len(lines) or lines[j] != "{":
            i += 1
            continue
        k = lines.index("}", j)
        found.append((m.group(1), i + 1, k - i + 1,
                      "\n".join(lines[i:k + 1])))
        i = k + 1
    return found


def call_args(code, start):
    """The top-level arguments of the call whose "(" is at start."""
    args, depth, cur, i = [], 0, "", start
    while i < len(code):
        ch = code[i]
        if ch == '"':
            m = re.compile(r'"(\\.|[^"\\])*"').match(code, i)
            cur += m.group(0)
            i = m.end()
            continue
        if ch == "(":
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return args + [cur.strip()]
        elif ch == "," and depth == 1:
            args.append(cur.strip())
            cur, i = "", i + 1
            continue
        cur += ch
        i += 1
    return args + [cur.strip()]


def strcmp_chains(text):
    """(function, expression, literals) wherever one function compares
    the same expression with two or more string literals: a dispatch on
    a name that a table or an enum should do."""
    chains = []
    for name, _, _, body in c_functions(text):
        seen = {}
        for m in re.finditer(r"\bstr(?:n?case|n)?cmp\s*\(", body):
            args = call_args(body, m.end() - 1)[:2]
            lits = [a for a in args if a.startswith('"')]
            other = [re.sub(r"\s+", "", a) for a in args
                     if not a.startswith('"')]
            if len(lits) == 1 and len(other) == 1:
                seen.setdefault(other[0], set()).add(lits[0])
        chains += [(name, expr, sorted(lits))
                   for expr, lits in seen.items() if len(lits) >= 2]
    return chains


def client_c_files():
    return sorted(glob.glob(os.path.join(ROOT, "client", "*.c")))


def read(path):
    with open(path) as f:
        return f.read()


def test_dchat_dispatches_on_no_strcmp_chain():
    """Events are an enum, commands and subcommands tables: a name is
    looked up once in a table, never compared with one literal after
    another."""
    bad = [f"client/{os.path.basename(p)}: {fn}() compares {expr} with "
           f"{', '.join(lits)}"
           for p in client_c_files()
           for fn, expr, lits in strcmp_chains(read(p))]
    assert not bad, bad


# The longest a function of client/ may be, and one of ui.c (the face is
# one small function per event and per command).
CLIENT_FUNCTION_MAX = 80
UI_FUNCTION_MAX = 59


def long_functions(path, text):
    limit = UI_FUNCTION_MAX if os.path.basename(path) == "ui.c" else \
        CLIENT_FUNCTION_MAX
    return [f"client/{os.path.basename(path)}: {fn}() at line {line} is "
            f"{n} lines (at most {limit})"
            for fn, line, n, _ in c_functions(text) if n > limit]


def test_dchat_functions_are_short():
    files = client_c_files()
    found = [f for p in files for f in c_functions(read(p))]
    # The parser sees the functions, so a pass is not an empty search.
    assert len(found) > 250 and {"app_run", "main", "session_io"} <= \
        {fn for fn, _, _, _ in found}, len(found)
    bad = [b for p in files for b in long_functions(p, read(p))]
    assert not bad, bad


def ui_uses(text):
    """The ways a file calls into ui.c: its header, or a ui_ function."""
    code = strip_comments_and_strings(text)
    uses = re.findall(r'#\s*include\s*"ui\.h"', text)
    return uses + re.findall(r"\bui_\w+\s*\(", code)


def test_the_loop_reports_through_its_face():
    """run.c and app.h know the face only as struct app_face: ui.c calls
    down into the application, never the reverse."""
    bad = [f"client/{name}: {use}" for name in ("run.c", "app.h")
           for use in ui_uses(read(os.path.join(ROOT, "client", name)))]
    assert not bad, bad


def session_derefs(path, text):
    """Where a file other than session*.c defines struct session or
    reaches into one: `x->` on an x declared `struct session *` in the
    same function (parameters included), or `x[i]->` on an array."""
    name = os.path.basename(path)
    if name.startswith("session") and name.endswith(".c"):
        return []
    code = c_code(text)
    bad = [f"client/{name}: defines struct session"
           for _ in re.finditer(r"\bstruct\s+session\s*\{", code)]
    for fn, _, _, body in c_functions(text):
        names = set()
        for decl in re.finditer(r"\bstruct\s+session\s*(\*[^;{)]*)", body):
            names.update(re.findall(r"\*\s*(\w+)", decl.group(1)))
        for v in sorted(names):
            if re.search(r"\b" + v + r"\s*(\[[^\]]*\]\s*)?->", body):
                bad.append(f"client/{name}: {fn}() uses {v}-> of a "
                           f"struct session")
    return bad


def test_struct_session_is_opaque():
    files = sorted(glob.glob(os.path.join(ROOT, "client", "*.[ch]")))
    defined = [os.path.relpath(p, ROOT) for p in files
               if re.search(r"\bstruct\s+session\s*\{", c_code(read(p)))]
    assert defined == ["client/session.c"], defined
    bad = [b for p in files for b in session_derefs(p, read(p))]
    assert not bad, bad
