#!/usr/bin/env python3
"""`python3 bench/bench.py [--peer] [--quick] ...` is `python3 -m bench ...` run from the repository root.

The bench is a package (bench/run.py and its modules) that imports `tests.servers`, the process helpers
the tests use too, as a normal package: that needs the repository root as the working directory, so
this entry goes there and replaces itself with `python3 -m bench` (same process id, same signals).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    os.execv(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]])
