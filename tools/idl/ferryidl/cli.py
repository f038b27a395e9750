"""Command line: ferry_idl.py [options] FILE.idl

Writes <base>.h, <base>_client.h, <base>_client.c, <base>_server.h,
<base>_server.c and <base>.md into --outdir (base = file name without
.idl). Errors go to stderr as `file:line:col: error: message`; exit 1.
"""

import argparse
import os
import sys
from typing import Dict, List, Optional

from . import gen_c, gen_md, lexer, parser, sema
from . import model as M
from .diag import IdlError, IdlErrors, Pos

EXIT_BAD_INPUT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def compile_text(text: str, source: str) -> M.Interface:
    """Text of an IDL file -> checked model; raises IdlError/IdlErrors."""
    return sema.check(parser.parse(lexer.tokenize(text)), source)


def outputs(iface: M.Interface, base: str) -> Dict[str, str]:
    files = gen_c.generate(iface, base)
    files[f"{base}.md"] = gen_md.generate(iface, base)
    return files


def write_if_changed(path: str, text: str) -> None:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if f.read() == text:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def compiler_files() -> List[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    files = [os.path.join(here, f) for f in sorted(os.listdir(here)) if f.endswith(".py")]
    return files + [os.path.join(os.path.dirname(here), "ferry_idl.py")]


def depfile_escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")


def run(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(prog="ferry_idl.py", description="Ferry IDL compiler")
    ap.add_argument("input", help="the .idl file")
    ap.add_argument("--outdir", "-o", default=".", help="directory for the generated files")
    ap.add_argument("--depfile", help="write a Makefile-style dependency file (for Meson/Ninja)")
    ap.add_argument("--check", action="store_true", help="only check the file, write nothing")
    ap.add_argument("--canonical", action="store_true",
                    help="print the canonical form that the interface hash covers, write nothing")
    args = ap.parse_args(argv)

    name = args.input
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except OSError as e:
        print(f"ferry_idl.py: error: cannot read '{name}': {e.strerror}", file=sys.stderr)
        return EXIT_USAGE
    base = os.path.basename(name)
    if base.endswith(".idl"):
        base = base[:-4]
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[:e.start].count(b"\n") + 1
            col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
            raise IdlError(Pos(line, col), "file is not valid UTF-8") from None
        iface = compile_text(text, os.path.basename(name))
    except IdlError as e:
        print(e.render(name), file=sys.stderr)
        return EXIT_BAD_INPUT
    except IdlErrors as es:
        for e in es.errors:
            print(e.render(name), file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.canonical:
        sys.stdout.write(iface.canonical())
        print(f"hash 0x{iface.hash():016x}")
        return 0
    if args.check:
        return 0
    files = outputs(iface, base)
    os.makedirs(args.outdir, exist_ok=True)
    for fname, text in files.items():
        write_if_changed(os.path.join(args.outdir, fname), text)
    if args.depfile:
        first = os.path.join(args.outdir, f"{base}.h")
        deps = [os.path.abspath(name)] + compiler_files()
        with open(args.depfile, "w", encoding="utf-8") as f:
            f.write(depfile_escape(first) + ": " + " \\\n  ".join(depfile_escape(d) for d in deps) + "\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback for the user; FERRY_IDL_DEBUG=1 shows it
        if os.environ.get("FERRY_IDL_DEBUG"):
            raise
        print(f"ferry_idl.py: internal error: {type(e).__name__}: {e} "
              "(please report; FERRY_IDL_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
