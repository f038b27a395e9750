#!/usr/bin/env python3
"""Ferry IDL compiler entry point. See docs/idl.md; `--help` for options."""

import os
import sys

sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ferryidl.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
