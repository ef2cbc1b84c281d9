"""Reads the district reference files from disk; the validation itself is pure and lives in streams.domain.district."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.domain.district import DOCUMENTS, District, ReferenceDataError
from streams.domain.hotspots import HotspotPolicy

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[1] / "deploy" / "district"


def load_district(directory: Path = DEFAULT_DIRECTORY) -> District:
    """Read the six files in ``directory`` and build the validated District; ReferenceDataError names the file."""
    return District.from_documents({name: _read_json(directory / name) for name in DOCUMENTS})


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReferenceDataError(path.name, f"missing file {path}") from None
    except OSError as exc:
        raise ReferenceDataError(path.name, f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ReferenceDataError(path.name, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReferenceDataError(
            path.name, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


HOTSPOTS = "hotspots.json"


def load_hotspot_policy(directory: Path = DEFAULT_DIRECTORY) -> HotspotPolicy:
    """The hotspot rules; without the file, the defaults (30 days, 10 alarms) for every family."""
    if not (directory / HOTSPOTS).exists():
        return HotspotPolicy()
    try:
        return HotspotPolicy.from_document(_read_json(directory / HOTSPOTS))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ReferenceDataError(HOTSPOTS, str(exc)) from None
