"""What the I2C sensors cost: reads per second per device on the fake bus,
and whether three of them polled at 20 Hz slow the reflex of a 100 Hz
serial sensor beside them.

    python -m benchmarks.i2c_bench              # updates "I2C" in BENCHMARKS.md
    python -m benchmarks.i2c_bench --cycles 20 --no-write   # a quick look

Reads/s: one driver object calling `read()` in a loop for READ_SECONDS on
`FakeBus` (the same smbus2 calls as on /dev/i2c-1, answered by the fake
chips in Python; a real 100 kHz bus is slower, see the note it prints).
Reflex: benchmarks.run's reflex scenario (a TFmini on a pseudo-terminal at
100 Hz, far for 100 ms then close for 100 ms; each close is one stop, timed
to the forward pin on gpiozero's MockFactory), once with the serial sensor
alone and once with an INA219 (two sensors), a BME280 and a VL53L1X at 20 Hz
on the fake bus in the same daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from anse_hw import config as configuration
from anse_hw.app.daemon import Daemon
from anse_hw.drivers.i2c.bme280 import BME280
from anse_hw.drivers.i2c.fakebus import FakeBus
from anse_hw.drivers.i2c.fakechips import FAKES
from anse_hw.drivers.i2c.ina219 import INA219
from anse_hw.drivers.i2c.vl53l1x import VL53L1X
from benchmarks.markdown import replace_section
from benchmarks.run import ROOT, Rig, percentile, reflex_scenario

READ_SECONDS = 2.0
FAKE_DEVICES = {
    "0x41": {"device": "ina219", "bus_voltage": 12.1, "current": 0.8, "shunt_ohms": 0.1},
    "0x76": {"device": "bme280"},
    "0x29": {"device": "vl53l1x", "distance_cm": 120},
}
I2C_SENSORS = """
  - {name: battery, type: voltage, driver: ina219, address: 0x41, interval: 0.05}
  - {name: motor_current, type: current, driver: ina219, address: 0x41, interval: 0.05}
  - {name: air, type: pressure, driver: bme280, address: 0x76, interval: 0.05}
  - {name: tof, type: distance, driver: vl53l1x, address: 0x29, interval: 0.05}
"""


def reads_per_second(chip: str, make) -> float:
    """`make(bus, address)`'s read() in a loop on a fake bus holding `chip`."""
    bus = FakeBus(chips={0x41: FAKES[chip]()})
    device = make(bus, 0x41)
    device.read()  # the first read programs the chip
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < READ_SECONDS:
        device.read()
        count += 1
    return count / (time.perf_counter() - began)


class I2CRig(Rig):
    """benchmarks.run's anse-hw rig with the three I2C devices beside the TFmini."""

    def __init__(self, fake_file: Path) -> None:
        super().__init__("anse-hw")
        self.fake_file = fake_file

    def _serve_ours(self) -> None:
        cfg = configuration.parse(f"""
server: {{host: 127.0.0.1, port: {self.port}}}
gpio: {{pin_factory: mock}}
i2c: {{fake_file: {self.fake_file}}}
sensors:
  - {{name: lidar, driver: serial, port: {self.device}, protocol: tfmini, max_age: 5}}
{I2C_SENSORS}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.6}}
reflexes:
  - {{name: proximity_safeguard, sensor: lidar, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: lidar, above: 15, actuator: movement, command: move}}
""")
        daemon = Daemon(cfg, pin_factory=self.factory)
        self._stop = daemon.request_stop
        asyncio.run(daemon.run())


def row(label: str, result: dict) -> str:
    values = result["latencies_ms"]
    return (
        f"| {label} | {percentile(values, 50):.2f} | {percentile(values, 99):.2f} | "
        f"{max(values):.2f} | {result['missed']} of {result['stops']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rates = {
        "INA219 (voltage + current: 4 register reads)": reads_per_second(
            "ina219", lambda bus, at: INA219(bus, at, 0.1)
        ),
        "BME280 (one 13-byte burst)": reads_per_second("bme280", BME280),
        "VL53L1X (status, 17-byte result, clear)": reads_per_second("vl53l1x", VL53L1X),
    }
    fake_file = Path(tempfile.mkdtemp(prefix="anse-hw-i2c-")) / "i2c.json"
    fake_file.write_text(json.dumps(FAKE_DEVICES))
    alone = Rig("anse-hw").serve(reflex_scenario(0, 0, args.cycles))
    beside = I2CRig(fake_file).serve(reflex_scenario(0, 0, args.cycles))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rate_rows = "\n".join(f"| {name} | {rate:,.0f} |" for name, rate in rates.items())
    body = f"""Measured by `python -m benchmarks.i2c_bench` on {when} ({args.cycles} stops each).

Reads per second of one driver on the register-level fake bus (FakeBus: the
drivers' smbus2 calls answered in Python), for {READ_SECONDS:g} s each.  This is
the drivers' own cost per read; on a Pi the bus itself bounds it (at 100 kHz a
2-byte register read is about 0.5 ms, so an INA219 read of four of them is
about 2 ms, a few hundred reads per second at most).

| device | reads/s |
|---|---|
{rate_rows}

Reflex latency of a TFmini at 100 Hz (frame written → the forward pin at 0),
alone and with an INA219 (two sensors), a BME280 and a VL53L1X each polled at
20 Hz on the fake bus in the same daemon, no client connected.

| setup | p50 ms | p99 ms | max ms | missed |
|---|---|---|---|---|
{row("TFmini alone", alone)}
{row("TFmini + 3 I2C devices at 20 Hz", beside)}"""
    print(body)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", "I2C", body)


if __name__ == "__main__":
    main()
