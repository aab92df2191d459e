"""BENCHMARKS.md is shared by several harnesses: each owns its `## ` sections.

`benchmarks.run` rewrites the file's head and its own sections; the other
harnesses (the parser soak, ...) replace only theirs.  Neither erases the
other's figures.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"^## (.+)$", re.MULTILINE)


def sections(text: str) -> dict[str, str]:
    """Heading → the section's whole text (heading line included)."""
    found = list(_SECTION.finditer(text))
    ends = [m.start() for m in found[1:]] + [len(text)]
    return {m.group(1).strip(): text[m.start() : end] for m, end in zip(found, ends, strict=True)}


def replace_section(path: Path, heading: str, body: str) -> None:
    """Put `## heading` + body in place of the old section, or at the end."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"## {heading}\n\n{body.strip()}\n\n"
    old = sections(text).get(heading)
    text = text.replace(old, block) if old else text.rstrip("\n") + "\n\n" + block
    path.write_text(text.rstrip("\n") + "\n")


def keep_other_sections(path: Path, new_text: str) -> str:
    """`new_text` plus the sections of the current file that it does not have."""
    if not path.exists():
        return new_text
    mine = sections(new_text)
    kept = [s for heading, s in sections(path.read_text()).items() if heading not in mine]
    return new_text.rstrip("\n") + "\n\n" + "".join(kept).rstrip("\n") + "\n" if kept else new_text
