"""The publishers' documentation runs as written: its Python examples and the bytes it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "schemas" / "README.md"


def _blocks(text: str, lang: str) -> list[str]:
    """Fenced blocks of one language, with the indentation of list items removed."""
    found = []
    for match in re.finditer(rf"^( *)```{lang}\n(.*?)^\1```", text, flags=re.S | re.M):
        indent = len(match.group(1))
        found.append("\n".join(line[indent:] for line in match.group(2).splitlines()))
    return found


def test_every_python_example_in_the_publishers_readme_runs_as_written() -> None:
    blocks = _blocks(README.read_text(encoding="utf-8"), "python")
    assert len(blocks) >= 2
    for block in blocks:
        # Each block on its own, from the repository root, as the README tells a publisher to run it.
        script = block + "\n"
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{block}\n---\n{done.stderr}"


def test_the_worked_example_produces_the_bytes_its_hex_dump_shows() -> None:
    text = README.read_text(encoding="utf-8")
    example = _blocks(text, "python")[0]
    dump = text[text.index(example) :].split("```\n", 2)[2].split("```", 1)[0]
    expected = bytes.fromhex("".join("".join(line.split("  ")[0].split(":")[1].split()) for line in dump.splitlines()))
    namespace: dict[str, object] = {}
    exec(compile(example, "README", "exec"), namespace)
    assert namespace["data"] == expected
    assert len(expected) == 114
