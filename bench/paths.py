"""Where the bench reads and writes: all relative to the repository root, never this machine's layout."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Raw figures of every run (gitignored).
OUT_DIR = ROOT / "bench" / "out"
#: The latest full run, with the targets line (written by `--results`).
RESULTS = ROOT / "bench" / "RESULTS.md"
#: The peer (BeadHub 0.3.1): its setup.sh and harness live in ../shared/peer beside the repository.
PEER_DIR = ROOT.parent / "shared" / "peer"
PEER_RECORDED = PEER_DIR / "results" / "bench-fresh-db.json"
#: Where the peer's setup.sh puts its venv and pid files: $PEER, or that script's own default.
PEER_HOME = Path(os.environ.get("PEER", "/tmp/peer"))
PEER_VENV_PY = PEER_HOME / "venv" / "bin" / "python"
