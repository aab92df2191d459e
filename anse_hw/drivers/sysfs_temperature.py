"""Temperature sensors the kernel exposes as files: a DS18B20 on the 1-wire
bus (`dtoverlay=w1-gpio`), and the CPU's thermal zone.

Both are polled by a thread of their own: reading a DS18B20's `w1_slave` makes
the kernel start a conversion and wait for it (up to 750 ms), so it must
never run on anyone else's thread.  The parsing is pure (`parse_w1_slave`,
`parse_millidegrees`) and tested on text alone.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, ClassVar

from anse_hw import files
from anse_hw.drivers.threaded import ThreadedSensor
from anse_hw.errors import DriverError
from anse_hw.kinds import SENSOR_KINDS, SensorKind
from anse_hw.options import Option, a_path
from anse_hw.readings import Sample

#: The DS18B20's datasheet range.
DS18B20_RANGE = (-55.0, 125.0)
#: What a DS18B20 reports when it never converted (power or wiring trouble).
POWER_ON_MILLIDEGREES = 85000
#: A sysfs attribute is at most a page; `w1_slave` and `temp` are far less.
#: Nothing more is ever read, whatever the path names.
MAX_BYTES = 4096


def parse_w1_slave(text: str) -> Sample:
    """The kernel's two lines, e.g.::

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125
    """
    lines = text.strip().splitlines()
    if len(lines) < 2:
        return Sample.none("short read from w1_slave")
    if not lines[0].rstrip().endswith("YES"):
        return Sample.none("CRC check failed (NO)")
    _, found, raw = lines[1].rpartition("t=")
    try:
        if not found:
            raise ValueError
        milli = int(raw.strip())
    except ValueError:
        return Sample.none(f"no temperature in {lines[1][:60]!r}")
    if milli == POWER_ON_MILLIDEGREES:
        return Sample.none(
            "85 °C power-on value: no conversion took place (check power and wiring)"
        )
    low, high = DS18B20_RANGE
    if not low * 1000 <= milli <= high * 1000:
        return Sample.none(f"{milli / 1000:g} °C is outside the DS18B20's {low:g}..{high:g} °C")
    return Sample(milli / 1000)


def parse_millidegrees(text: str) -> Sample:
    """A thermal zone's `temp`: one integer, millidegrees Celsius."""
    try:
        return Sample(int(text.strip()) / 1000)
    except ValueError:
        return Sample.none(f"not a temperature: {text[:40]!r}")


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be polled, found without reading it (reading a
    DS18B20's `w1_slave` starts a 750 ms conversion): it must exist and be
    a regular file (sysfs attributes are), never a FIFO or /dev/zero."""
    if not path.exists():
        return f"{path} does not exist"
    try:
        files.open_regular(path).close()
    except files.FileProblem as exc:
        return str(exc)
    return None


class PolledFileSensor(ThreadedSensor):
    """Reads one file every `interval` on its own thread, at most MAX_BYTES
    of it, through files.py.

    A file that cannot be read is a fault (every guard it has goes to its safe
    state); the fault clears as soon as it can be read again.
    """

    DEFAULT_INTERVAL = 1.0

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float = 0.5,
        *,
        kind: SensorKind = SENSOR_KINDS["temperature"],
        **options: Any,
    ) -> None:
        super().__init__(name, interval, max_age, kind=kind)
        self.path = self.locate(options)

    def locate(self, options: dict[str, Any]) -> Path:
        """The file to read; DriverError if it cannot be found now."""
        raise NotImplementedError

    def parse(self, text: str) -> Sample:
        raise NotImplementedError

    def measure(self, on_sample, on_fault) -> None:
        lost: str | None = None
        deadline = time.monotonic()
        while not self.stopping.is_set():
            try:
                text = files.read_text(self.path, MAX_BYTES)
            except files.FileProblem as exc:
                if lost is None:
                    lost = str(exc)
                    on_fault(lost, True)
            else:
                if lost is not None:
                    lost = None
                    on_fault(f"{self.path} readable again", False)
                on_sample(self.parse(text))
            deadline = max(deadline + self.interval, time.monotonic())
            self.stopping.wait(deadline - time.monotonic())


_W1_ID = re.compile(r"[0-9a-fA-F]{2}-[0-9a-fA-F]{12}")


def _w1_id(value: str) -> str | None:
    """A 1-wire id names a directory under w1_root: never a path of its own."""
    if _W1_ID.fullmatch(value):
        return None
    return "must be a 1-wire id: family, '-', 12 hex digits (28-0316a27936ff)"


def _w1_device(options: dict[str, Any]) -> Path:
    root = Path(options["w1_root"])
    if options["device"]:
        return root / options["device"]
    found = sorted(root.glob("28-*"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DriverError(
            f"no DS18B20 (28-…) under {root}: is `dtoverlay=w1-gpio` in config.txt "
            "and the sensor wired with its 4.7 kΩ pull-up?"
        )
    names = ", ".join(p.name for p in found)
    raise DriverError(f"several DS18B20 under {root} ({names}): name one with `device`")


class DS18B20Sensor(PolledFileSensor):
    DRIVER = "ds18b20"
    KINDS = ("temperature",)
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "device",
            str,
            None,
            "1-wire id such as 28-0316a27936ff (optional if only one)",
            _w1_id,
        ),
        Option(
            "w1_root", str, "/sys/bus/w1/devices", "where the kernel lists 1-wire devices", a_path
        ),
    )

    @classmethod
    def device_problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        try:
            problem = file_problem(_w1_device(options) / "w1_slave")
        except DriverError as exc:
            problem = str(exc)
        return [("device", problem)] if problem else []

    def locate(self, options: dict[str, Any]) -> Path:
        slave = _w1_device(options) / "w1_slave"
        problem = file_problem(slave)
        if problem:
            hint = "" if slave.exists() else " (is the sensor connected?)"
            raise DriverError(f"{self.name}: {problem}{hint}")
        return slave

    def parse(self, text: str) -> Sample:
        return parse_w1_slave(text)

    def describe(self) -> str:
        return f"DS18B20 {self.path.parent.name}"


class CpuTemperatureSensor(PolledFileSensor):
    DRIVER = "cpu"
    KINDS = ("temperature",)
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "path",
            str,
            "/sys/class/thermal/thermal_zone0/temp",
            "thermal zone file, millidegrees Celsius",
            a_path,
        ),
    )

    @classmethod
    def device_problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        problem = file_problem(Path(options["path"]))
        return [("path", problem)] if problem else []

    def locate(self, options: dict[str, Any]) -> Path:
        path = Path(options["path"])
        problem = file_problem(path)
        if problem:
            hint = "" if path.exists() else " (no thermal zone there)"
            raise DriverError(f"{self.name}: {problem}{hint}")
        return path

    def parse(self, text: str) -> Sample:
        return parse_millidegrees(text)

    def describe(self) -> str:
        return f"CPU temperature {self.path}"
