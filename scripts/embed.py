#!/usr/bin/env python3
"""scripts/embed.py OUT.c FILE... - the files as C arrays, in the table
console_files[] of dird/console.h, so that dird serves its web console
from its own binary (the build runs this; the files stay readable)."""
import os
import sys

TYPES = {".html": "text/html; charset=utf-8",
         ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    rows = []
    with open(out, "w") as f:
        f.write("/* Made by scripts/embed.py from dird/console/; "
                "not to be edited. */\n#include <stddef.h>\n\n"
                "#include \"console.h\"\n\n")
        for i, path in enumerate(paths):
            with open(path, "rb") as g:
                data = g.read()
            f.write(f"static const unsigned char f{i}[] = {{\n")
            for k in range(0, len(data), 16):
                f.write("\t" + ", ".join(str(b) for b in data[k:k + 16])
                        + ",\n")
            f.write("};\n")
            ext = os.path.splitext(path)[1]
            rows.append((os.path.basename(path), TYPES[ext], i, len(data)))
        f.write("\nconst struct console_file console_files[] = {\n")
        for name, ctype, i, n in rows:
            f.write(f"\t{{ \"{name}\", \"{ctype}\", f{i}, {n} }},\n")
        f.write("\t{ NULL, NULL, NULL, 0 },\n};\n")


if __name__ == "__main__":
    main()
