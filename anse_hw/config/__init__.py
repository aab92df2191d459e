"""The YAML configuration: loading with bounds, validation with file:line
messages, defaults, the salvage for `--safe-stop` and the description for
`--check`.

The model it builds (Config and its parts) is anse_hw.model, in the core;
this package is the way in from a file.  Its modules, by job: yamlfile
(the bounded loader), schema (option tables derived from the model, the
generic validator), items (one sensor, actuator or reflex), rules (between
items), build (a whole file), salvage, describe, and reference (the
generated docs/configuration.md).
"""

from __future__ import annotations

from anse_hw.config.build import (
    SIM_DEFAULTS,
    SYSTEM_CONFIG,
    build,
    find_config_file,
    load,
    parse,
    read,
    sim_defaults,
)
from anse_hw.config.describe import describe
from anse_hw.config.salvage import Salvage, salvage, salvage_file
from anse_hw.errors import ConfigError  # what load, parse and build raise

__all__ = [
    "SIM_DEFAULTS",
    "SYSTEM_CONFIG",
    "ConfigError",
    "Salvage",
    "build",
    "describe",
    "find_config_file",
    "load",
    "parse",
    "read",
    "salvage",
    "salvage_file",
    "sim_defaults",
]
