"""The I2C drivers' conversions against their datasheets' worked examples,
and each driver talking to its chip on the register-level fake bus."""

from __future__ import annotations

import struct

import pytest

from anse_hw.drivers.i2c import bme280, ina219, pca9685, vl53l1x
from anse_hw.drivers.i2c.bme280 import BME280
from anse_hw.drivers.i2c.fakebus import FakeBus
from anse_hw.drivers.i2c.fakechips import FakeBME280, FakeINA219, FakePCA9685, FakeVL53L1X
from anse_hw.drivers.i2c.ina219 import INA219
from anse_hw.drivers.i2c.pca9685 import PCA9685, Servo, ServoRange
from anse_hw.drivers.i2c.vl53l1x import VL53L1X


def word(value: int) -> bytes:
    return value.to_bytes(2, "big")


# -- INA219 (TI SBOS448, §8.5 and Table 3) -------------------------------------


def test_ina219_calibration_is_the_datasheet_example():
    # Table 3: 2 mΩ shunt, 40 mV PGA range (so up to 20 A), 16 V bus range:
    # config 019Fh, calibration 5000h (20480) for a 1 mA current LSB.
    cal = ina219.calibrate(shunt_ohms=0.002, max_current=20, bus_range=16)
    assert cal.config == 0x019F
    assert cal.register == 0x5000
    assert cal.current_lsb == pytest.approx(0.001)


def test_ina219_calibration_for_the_common_0r1_breakout():
    # Equation 1-2 for 2 A through 0.1 Ω: minimum LSB 61 µA rounds up to
    # 100 µA, Cal = trunc(0.04096 / (100 µA × 0.1 Ω)) = 4096; PGA /8, 32 V.
    cal = ina219.calibrate(shunt_ohms=0.1, max_current=2)
    assert (cal.register, cal.current_lsb) == (4096, pytest.approx(0.0001))
    assert cal.config == 0x399F


def test_ina219_refuses_a_current_beyond_its_shunt_range():
    problem = ina219.settings_problem(0.1, 5, 32)
    assert problem is not None and "500 mV" in problem and "320 mV" in problem
    with pytest.raises(ValueError, match="320 mV"):
        ina219.calibrate(0.1, 5)


def test_ina219_table3_registers_convert_to_volts_and_amperes():
    bus = ina219.bus_voltage(word(0x5D98))
    assert bus.volts == pytest.approx(11.98)
    assert (bus.ready, bus.overflow) == (False, False)
    assert ina219.current(word(0x2710), 0.001) == pytest.approx(10.0)
    assert ina219.shunt_voltage(word(0x07D0)) == pytest.approx(0.020)


def test_ina219_negative_current_is_signed():
    # Current flowing back into the battery: two's complement registers.
    assert ina219.current(word(0xD8F0), 0.001) == pytest.approx(-10.0)
    assert ina219.shunt_voltage(word(0xF830)) == pytest.approx(-0.020)


def test_ina219_overflow_and_ready_flags():
    assert ina219.bus_voltage(word(0x5D99)).overflow
    assert ina219.bus_voltage(word(0x5D9A)).ready


def test_ina219_on_the_fake_chip_reproduces_table3():
    chip = FakeINA219()  # defaults: Table 3's 10 A, 2 mΩ, 11.98 V
    bus = FakeBus(chips={0x40: chip})
    device = INA219(bus, 0x40, shunt_ohms=0.002, max_current=20, bus_range=16)
    assert device.read() == ina219.PowerReading(pytest.approx(11.98), pytest.approx(10.0))
    registers = {reg: chip.register(reg) for reg in range(6)}
    assert registers == {0: 0x019F, 1: 0x07D0, 2: 0x5D9A, 3: 0x1766, 4: 0x2710, 5: 0x5000}


def test_ina219_reads_negative_current_and_reports_overflow():
    chip = FakeINA219()
    chip.update({"bus_voltage": 12.4, "current": -0.5, "shunt_ohms": 0.1})
    device = INA219(FakeBus(chips={0x41: chip}), 0x41, shunt_ohms=0.1, max_current=2)
    assert device.read() == ina219.PowerReading(pytest.approx(12.4), pytest.approx(-0.5))
    chip.update({"bus_voltage": 12.4, "current": 4.0, "shunt_ohms": 0.1})  # 400 mV > 320 mV
    reading = device.read()
    assert reading.voltage == pytest.approx(12.4)
    assert reading.current is None and "overflow" in (reading.problem or "")


def test_ina219_reprograms_a_chip_that_lost_its_calibration():
    chip = FakeINA219()
    chip.update({"bus_voltage": 11.1, "current": 1.5, "shunt_ohms": 0.1})
    device = INA219(FakeBus(chips={0x41: chip}), 0x41, shunt_ohms=0.1)
    assert device.read().current == pytest.approx(1.5, abs=0.001)
    chip.power_on()  # a brown-out: the current register would read 0 A from now on
    glitch = device.read()
    assert glitch.current is None and "calibration" in (glitch.problem or "")
    assert device.read().current == pytest.approx(1.5, abs=0.001)


# -- BME280 (BST-BME280-DS002 §4.2; example from BMP280 datasheet §3.12) -------

EXAMPLE_TP = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
EXAMPLE_H = (75, 362, 0, 324, 0, 30)


def example_trimming() -> bme280.Trimming:
    return bme280.Trimming(*EXAMPLE_TP, *EXAMPLE_H)


def test_bme280_trimming_is_parsed_from_its_register_layout():
    tp = struct.pack("<HhhHhhhhhhhh", *EXAMPLE_TP) + bytes([0x00, 75])
    # 0xE1..0xE7: H2 (s16), H3, then H4 = E4<<4 | E5[3:0], H5 = E6<<4 | E5[7:4], H6.
    h = struct.pack("<hB", 362, 0) + bytes([324 >> 4, 324 & 0xF, 0, 30])
    assert bme280.parse_trimming(tp, h) == example_trimming()


def test_bme280_negative_h4_h5_and_h6_are_sign_extended():
    h = struct.pack("<hB", 300, 0) + bytes([0xFE, 0x3C, 0xFF, 0xE2])
    trim = bme280.parse_trimming(bytes(26), h)
    assert (trim.h4, trim.h5, trim.h6) == (-32 + 0xC, -16 + 0x3, -30)


def test_bme280_temperature_and_pressure_match_the_datasheet_example():
    trim = example_trimming()
    centi, t_fine = bme280.compensate_temperature(trim, 519888)
    assert (centi, t_fine) == (2508, 128422)  # 25.08 °C
    pascal_256 = bme280.compensate_pressure(trim, 415148, t_fine)
    # The datasheet's table prints 25767236; its own published int64 formula
    # gives 25767233 (the table came from a different computation), i.e.
    # 100653.25 Pa against the table's 100653.27 Pa.
    assert pascal_256 == 25767233
    assert pascal_256 / 256 == pytest.approx(100653.27, abs=0.05)


def humidity_double(trim: bme280.Trimming, adc_h: int, t_fine: int) -> float:
    """The datasheet's floating-point humidity formula (§8.1), a second opinion."""
    var_h = t_fine - 76800.0
    var_h = (adc_h - (trim.h4 * 64.0 + trim.h5 / 16384.0 * var_h)) * (
        trim.h2
        / 65536.0
        * (1.0 + trim.h6 / 67108864.0 * var_h * (1.0 + trim.h3 / 67108864.0 * var_h))
    )
    var_h = var_h * (1.0 - trim.h1 * var_h / 524288.0)
    return min(max(var_h, 0.0), 100.0)


@pytest.mark.parametrize("adc_t", [415000, 519888, 560000])
@pytest.mark.parametrize("adc_h", [22000, 27000, 30000, 35000])
def test_bme280_integer_humidity_agrees_with_the_double_formula(adc_t, adc_h):
    trim = example_trimming()
    _, t_fine = bme280.compensate_temperature(trim, adc_t)
    integer = bme280.compensate_humidity(trim, adc_h, t_fine) / 1024
    assert integer == pytest.approx(humidity_double(trim, adc_h, t_fine), abs=0.05)


def test_bme280_humidity_is_clamped_to_0_and_100_percent():
    trim = example_trimming()
    assert bme280.compensate_humidity(trim, 0, 128422) == 0
    assert bme280.compensate_humidity(trim, 0xFFFF, 128422) == 100 * 1024


def test_bme280_data_registers_unpack_20_and_16_bit_values():
    data = bytes([0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x75, 0x30])
    assert bme280.parse_sample(data) == bme280.RawSample(519888, 415148, 30000)


def test_bme280_skipped_measurement_is_no_reading():
    reading = bme280.compensate(example_trimming(), bme280.RawSample(0x80000, 0x80000, 0x8000))
    assert reading.temperature is None and "no measurement" in (reading.problem or "")
    partial = bme280.compensate(example_trimming(), bme280.RawSample(519888, 0x80000, 0x8000))
    assert (partial.temperature, partial.pressure, partial.humidity) == (25.08, None, None)


def test_bme280_on_the_fake_chip_reads_the_example():
    device = BME280(FakeBus(chips={0x76: FakeBME280()}), 0x76)
    reading = device.read()
    assert reading.temperature == pytest.approx(25.08)
    assert reading.pressure == pytest.approx(1006.5325, abs=0.0001)
    assert reading.humidity == pytest.approx(51.96, abs=0.01)


def test_bme280_follows_changed_values_and_restarts_after_a_reset():
    chip = FakeBME280()
    device = BME280(FakeBus(chips={0x76: chip}), 0x76)
    chip.update({"temperature": -5.5, "pressure": 950.0, "humidity": 80.0})
    reading = device.read()
    assert reading.temperature == pytest.approx(-5.5, abs=0.01)
    assert reading.pressure == pytest.approx(950.0, abs=0.01)
    assert reading.humidity == pytest.approx(80.0, abs=0.01)
    chip.power_on()  # asleep again, data registers stale
    assert "reset" in (device.read().problem or "")
    assert device.read().temperature == pytest.approx(-5.5, abs=0.01)


def test_bme280_chip_id_check_names_a_bmp280():
    chip = FakeBME280()
    chip.memory[bme280.REG_CHIP_ID] = 0x58
    bus = FakeBus(chips={0x77: chip})
    assert "BMP280" in (BME280.identify(bus, 0x77) or "")
    reading = BME280(bus, 0x77).read()
    assert reading.temperature is None and "BMP280" in (reading.problem or "")


# -- VL53L1X (ST ULD, UM2510) ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (9, 0),
        (6, 1),
        (4, 2),
        (8, 3),
        (5, 4),
        (3, 5),
        (7, 7),
        (0, 255),
        (0x29, 0),
        (23, 12),
        (31, 255),
    ],
)
def test_vl53l1x_range_status_table(raw, status):
    # Only bits 4..0 count (0x29 is 9 with a high bit set); past the table: 255.
    assert vl53l1x.range_status(raw) == status


def result_block(raw_status: int, millimetres: int) -> bytes:
    block = bytearray(17)
    block[0] = raw_status
    block[13:15] = millimetres.to_bytes(2, "big")
    return bytes(block)


def test_vl53l1x_valid_result_is_centimetres():
    assert vl53l1x.parse_result(result_block(9, 1234)) == vl53l1x.RangeReading(123.4, 0)


@pytest.mark.parametrize(("raw", "words"), [(4, "signal fail"), (5, "out of bounds"), (6, "sigma")])
def test_vl53l1x_failed_range_status_is_no_reading(raw, words):
    reading = vl53l1x.parse_result(result_block(raw, 1234))
    assert reading.distance_cm is None
    assert words in (reading.problem or "")


def test_vl53l1x_data_ready_follows_interrupt_polarity():
    assert vl53l1x.data_ready(0x01, 0x01)  # active high (bit 4 clear), line high
    assert not vl53l1x.data_ready(0x01, 0x00)
    assert vl53l1x.data_ready(0x11, 0x00)  # active low
    assert not vl53l1x.data_ready(0x11, 0x01)


def first_reading(device: VL53L1X) -> vl53l1x.RangeReading:
    """Poll as the sensor thread does: None while booting and calibrating."""
    for _ in range(5):
        reading = device.read()
        if reading is not None:
            return reading
    raise AssertionError("no reading in 5 polls")


def test_vl53l1x_brings_the_chip_up_as_the_uld_does_and_reads_distance():
    chip = FakeVL53L1X()
    chip.update({"distance_cm": 42.0})
    device = VL53L1X(FakeBus(chips={0x29: chip}), 0x29)
    assert first_reading(device) == vl53l1x.RangeReading(42.0, 0)
    # The default configuration (without the interrupt clear and start bytes
    # the ULD writes separately), then the VHV bounds of SensorInit.
    assert chip.memory[0x2D:0x86] == vl53l1x.DEFAULT_CONFIGURATION[:-2]
    assert (chip.memory[0x08], chip.memory[0x0B]) == (0x09, 0x00)
    assert chip.memory[0x87] == vl53l1x.START_RANGING


def test_vl53l1x_signal_fail_from_the_chip_is_no_reading():
    chip = FakeVL53L1X()
    chip.update({"distance_cm": 42.0, "status": 2})
    reading = first_reading(VL53L1X(FakeBus(chips={0x29: chip}), 0x29))
    assert reading.distance_cm is None and reading.status == 2


def test_vl53l1x_model_id_check():
    bus = FakeBus(chips={0x29: FakeVL53L1X(), 0x76: FakeBME280()})
    assert VL53L1X.identify(bus, 0x29) is None
    assert "0xEACC" in (VL53L1X.identify(bus, 0x76) or "")


# -- PCA9685 (NXP PCA9685 Rev. 4, §7.3) ----------------------------------------


def test_pca9685_prescale_from_the_25mhz_oscillator():
    assert pca9685.prescale_for(200) == 0x1E  # the datasheet's example
    assert pca9685.prescale_for(50) == 121
    assert pca9685.actual_frequency(121) == pytest.approx(50.03, abs=0.01)
    with pytest.raises(ValueError):
        pca9685.prescale_for(5000)


@pytest.mark.parametrize(("pulse", "off"), [(1000, 205), (1500, 307), (2000, 410)])
def test_pca9685_pulse_width_to_on_off_counts(pulse, off):
    # One tick at prescale 121 is 122 / 25 MHz = 4.88 µs.
    assert pca9685.pulse_counts(pulse, 121) == (0, off)


def test_pca9685_channel_registers_are_little_endian_pairs():
    assert pca9685.channel_bytes(0, 307) == [0x00, 0x00, 0x33, 0x01]
    assert pca9685.channel_bytes(0x123, 0x1000) == [0x23, 0x01, 0x00, 0x10]


def test_servo_range_maps_angles_to_pulses_and_refuses_beyond_travel():
    travel = ServoRange()
    assert [travel.pulse_us(a) for a in (0, 90, 180)] == [1000, 1500, 2000]
    wide = ServoRange(min_angle=-90, max_angle=90, min_pulse_us=500, max_pulse_us=2500)
    assert wide.pulse_us(-45) == 1000
    for angle in (-1, 181, float("nan")):
        with pytest.raises(ValueError, match="outside"):
            travel.pulse_us(angle)
    assert ServoRange(min_pulse_us=2000, max_pulse_us=1000).problem() is not None


def test_servo_angles_become_the_right_counts_on_the_chip():
    chip = FakePCA9685()
    board = PCA9685(FakeBus(chips={0x40: chip}), 0x40)
    pan, tilt = Servo(board, 0, safe_angle=90), Servo(board, 3, safe_angle=45)
    pan.move(0)
    tilt.move(180)
    assert chip.counts(0) == (0, 205) and chip.counts(3) == (0, 410)
    # PRE_SCALE took (it is only writable asleep), and the chip runs again.
    assert chip.memory[pca9685.REG_PRE_SCALE] == 121
    assert not chip.memory[pca9685.REG_MODE1] & pca9685.MODE1_SLEEP
    assert chip.pulse_us(0) == pytest.approx(1000, abs=5)
    pan.safe()
    tilt.safe()
    assert chip.pulse_us(0) == pytest.approx(1500, abs=5)
    assert chip.pulse_us(3) == pytest.approx(1250, abs=5)
    assert chip.pulse_us(1) is None  # untouched channels stay off


def test_servo_board_reset_is_set_up_again_before_the_next_command():
    chip = FakePCA9685()
    servo = Servo(PCA9685(FakeBus(chips={0x40: chip}), 0x40), 0)
    servo.move(30)
    chip.power_on()  # a brown-out: asleep, 200 Hz, outputs off
    assert chip.pulse_us(0) is None
    servo.move(60)
    assert chip.pulse_us(0) == pytest.approx(1333, abs=5)
    assert chip.memory[pca9685.REG_PRE_SCALE] == 121


def test_servo_safe_angle_must_be_within_travel():
    board = PCA9685(FakeBus(chips={0x40: FakePCA9685()}), 0x40)
    with pytest.raises(ValueError, match="outside"):
        Servo(board, 0, ServoRange(0, 90), safe_angle=120)
    with pytest.raises(ValueError, match="channel"):
        Servo(board, 16).move(90)


def test_vl53l1x_that_stops_ranging_is_restarted(monkeypatch):
    chip = FakeVL53L1X()
    device = VL53L1X(FakeBus(chips={0x29: chip}), 0x29)
    first_reading(device)
    monkeypatch.setattr(vl53l1x, "STALL_SECONDS", 0.0)  # no waiting a second in a test
    chip.power_on()  # reset: configuration gone, not ranging, no new samples
    stalled = device.read()
    assert stalled is not None and "stopped ranging" in (stalled.problem or "")
    assert first_reading(device) == vl53l1x.RangeReading(50.0, 0)
