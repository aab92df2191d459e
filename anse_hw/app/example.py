"""The example configs that ship inside the package (anse_hw/examples/*.yaml).

`anse-hw example pi-robot > robot.yaml` gives a pip-installed user the same
starting points a git checkout has, whatever kind of install they made.
"""

from __future__ import annotations

import sys
from pathlib import Path

from anse_hw.errors import OK, ConfigError

DIRECTORY = Path(__file__).resolve().parent.parent / "examples"


def names() -> list[str]:
    return sorted(path.stem for path in DIRECTORY.glob("*.yaml"))


def path(name: str) -> Path:
    """The file for `name` (with or without .yaml), or a ConfigError naming the choices."""
    stem = name.removesuffix(".yaml")
    if stem not in names():
        raise ConfigError([f"no example named {name!r}; there are: {', '.join(names())}"])
    return DIRECTORY / f"{stem}.yaml"


def show(name: str | None) -> int:
    """Print one example, or with no name the list of them with their first line."""
    if name is None:
        for stem in names():
            first = (DIRECTORY / f"{stem}.yaml").read_text().splitlines()[0]
            print(f"{stem:12} {first.lstrip('# ')}")
        return OK
    sys.stdout.write(path(name).read_text())
    return OK
