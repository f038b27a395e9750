#!/usr/bin/env python3
"""Golden-file tests of the IDL compiler (tools/idl/ferry_idl.py).

What this proves:
  - for every good input golden/good/<name>.idl, the compiler exits 0 and
    writes exactly the files stored in golden/good/<name>/ (byte for byte);
  - for every bad input golden/bad/<name>.idl, it exits 1, writes nothing,
    and prints exactly golden/bad/<name>.err (file:line:col: error: ...);
  - the interface hash is FNV-1a 64 (known test vectors) and output is
    deterministic;
  - no input, however mangled (truncations and byte mutations of the good
    inputs), makes the compiler crash: only positioned errors come out.

Usage: run_golden.py [--compiler PATH] [--update] [unittest args]
  --update  rewrite the goldens from the current compiler (review the diff!)
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
GOLDEN_SUFFIX = ".golden"
DEFAULT_COMPILER = os.path.join(HERE, "..", "..", "tools", "idl", "ferry_idl.py")
ARGS = argparse.Namespace(compiler=DEFAULT_COMPILER, update=False)


def idl_files(kind):
    d = os.path.join(GOLDEN, kind)
    return sorted(f for f in os.listdir(d) if f.endswith(".idl"))


def run_compiler(directory, name, outdir):
    """Run the compiler on `name` inside `directory` (so messages and
    banners show the bare file name)."""
    env = dict(os.environ)
    env.pop("FERRY_IDL_DEBUG", None)
    return subprocess.run([sys.executable, os.path.abspath(ARGS.compiler), "--outdir", outdir, name],
                          cwd=directory, capture_output=True, text=True, env=env, check=False)


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


class GoodInputs(unittest.TestCase):
    def test_good_outputs_match_golden(self):
        names = idl_files("good")
        self.assertTrue(names, "no good inputs")
        for name in names:
            base = name[:-4]
            with self.subTest(idl=name), tempfile.TemporaryDirectory() as out:
                r = run_compiler(os.path.join(GOLDEN, "good"), name, out)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")
                want_dir = os.path.join(GOLDEN, "good", base)
                # Stored as <file>.golden, so that no committed file looks
                # like a generated stub (*_client.c, *_server.c).
                if ARGS.update:
                    shutil.rmtree(want_dir, ignore_errors=True)
                    os.makedirs(want_dir)
                    for f in os.listdir(out):
                        shutil.copyfile(os.path.join(out, f), os.path.join(want_dir, f + GOLDEN_SUFFIX))
                got = sorted(os.listdir(out))
                self.assertEqual([f + GOLDEN_SUFFIX for f in got], sorted(os.listdir(want_dir)),
                                 "set of generated files")
                for f in got:
                    self.assertEqual(read(os.path.join(out, f)), read(os.path.join(want_dir, f + GOLDEN_SUFFIX)),
                                     f"{base}/{f} differs from the golden file (run with --update to "
                                     "accept, then review the diff)")

    def test_output_is_deterministic(self):
        name = idl_files("good")[0]
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            run_compiler(os.path.join(GOLDEN, "good"), name, a)
            run_compiler(os.path.join(GOLDEN, "good"), name, b)
            for f in os.listdir(a):
                self.assertEqual(read(os.path.join(a, f)), read(os.path.join(b, f)))


class BadInputs(unittest.TestCase):
    def test_bad_inputs_give_exact_errors(self):
        names = idl_files("bad")
        self.assertTrue(names, "no bad inputs")
        for name in names:
            base = name[:-4]
            with self.subTest(idl=name), tempfile.TemporaryDirectory() as out:
                r = run_compiler(os.path.join(GOLDEN, "bad"), name, out)
                self.assertNotIn("Traceback", r.stderr)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(os.listdir(out), [], "nothing may be written on error")
                errfile = os.path.join(GOLDEN, "bad", base + ".err")
                if ARGS.update:
                    with open(errfile, "w", encoding="utf-8") as f:
                        f.write(r.stderr)
                self.assertEqual(r.stderr, read(errfile))
                for line in r.stderr.splitlines():
                    self.assertRegex(line, r"^" + name.replace(".", r"\.") + r":\d+:\d+: error: ")

    def test_missing_file_is_a_usage_error(self):
        with tempfile.TemporaryDirectory() as out:
            r = run_compiler(out, "does_not_exist.idl", out)
            self.assertEqual(r.returncode, 2)
            self.assertNotIn("Traceback", r.stderr)
            self.assertIn("cannot read 'does_not_exist.idl'", r.stderr)


def load_package():
    sys.path.insert(0, os.path.dirname(os.path.abspath(ARGS.compiler)))
    sys.dont_write_bytecode = True
    from ferryidl import cli, diag, model  # pylint: disable=import-outside-toplevel
    return cli, diag, model


class Hash(unittest.TestCase):
    def test_fnv1a64_vectors(self):
        _, _, model = load_package()
        self.assertEqual(model.fnv1a64(b""), 0xCBF29CE484222325)
        self.assertEqual(model.fnv1a64(b"a"), 0xAF63DC4C8601EC8C)
        self.assertEqual(model.fnv1a64(b"foobar"), 0x85944171F73967E8)

    def test_hash_ignores_names_of_params_but_not_types(self):
        cli, _, _ = load_package()
        base = "interface t { [id(1)] m(in u32 a, out u32 b); };"
        renamed = "interface t { /** docs */ [id(1)] m(in u32 x, out u32 y); };"
        retyped = "interface t { [id(1)] m(in u64 a, out u32 b); };"
        renum = "interface t { [id(2)] m(in u32 a, out u32 b); };"
        h = cli.compile_text(base, "t.idl").hash()
        self.assertEqual(h, cli.compile_text(renamed, "t.idl").hash())
        self.assertNotEqual(h, cli.compile_text(retyped, "t.idl").hash())
        self.assertNotEqual(h, cli.compile_text(renum, "t.idl").hash())


class Robustness(unittest.TestCase):
    """Mangled inputs produce positioned errors, never an exception."""

    def check_text(self, cli, diag, text):
        try:
            iface = cli.compile_text(text, "fuzz.idl")
        except diag.IdlError as e:
            self.assertGreaterEqual(e.pos.line, 1)
            return
        except diag.IdlErrors as es:
            self.assertTrue(es.errors)
            return
        cli.outputs(iface, "fuzz")  # generation must not fail either

    def test_truncations_and_mutations(self):
        cli, diag, _ = load_package()
        rnd = random.Random(1234)
        alphabet = "{}()<>[],;=*/ \n\tabcxyz019_" + '"\\é\x00'
        for name in idl_files("good"):
            text = read(os.path.join(GOLDEN, "good", name))
            for cut in range(0, len(text), max(1, len(text) // 300)):
                with self.subTest(idl=name, cut=cut):
                    self.check_text(cli, diag, text[:cut])
            for i in range(400):
                t = list(text)
                for _ in range(rnd.randint(1, 4)):
                    k = rnd.randrange(len(t))
                    op = rnd.randrange(3)
                    if op == 0:
                        del t[k]
                    elif op == 1:
                        t.insert(k, rnd.choice(alphabet))
                    else:
                        t[k] = rnd.choice(alphabet)
                with self.subTest(idl=name, mutation=i):
                    self.check_text(cli, diag, "".join(t))


def main():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--compiler", default=DEFAULT_COMPILER)
    ap.add_argument("--update", action="store_true")
    ns, rest = ap.parse_known_args()
    ARGS.compiler, ARGS.update = ns.compiler, ns.update
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
