"""Shared set-up; tests import their harnesses from tests/helpers.py."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Each test session gets its own template store, so tests never touch ~/.local/share/promote.
os.environ.setdefault("PROMOTE_HOME", tempfile.mkdtemp(prefix="promote-home-"))
