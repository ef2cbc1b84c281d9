"""A copy of the code for every subprocess of a run (workers, probes), so all repetitions run the same code
even while the working tree changes under a long run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "streams", "projections", "chaos", "bench")
DATA = ("deploy/district", "deploy/city")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "results")


def take(target: Path) -> Path:
    """Copy the packages and the district data to ``target``; run subprocesses with it as cwd and PYTHONPATH."""
    shutil.rmtree(target, ignore_errors=True)
    for name in (*PACKAGES, *DATA):
        shutil.copytree(REPO / name, target / name, ignore=_IGNORE)
    return target


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_files": changed}
