"""The machine the figures were measured on, from /proc."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def describe() -> dict[str, Any]:
    mem_kb = _first("/proc/meminfo", "MemTotal")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu_model": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count() or 0,
        "ram_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def rss_mb(pid: int) -> float:
    """Resident set size of a process (VmRSS), in MiB; 0 if it is gone."""
    value = _first(f"/proc/{pid}/status", "VmRSS")
    return round(int(value.split()[0]) / 1024, 1) if value else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
