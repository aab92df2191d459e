"""I2C devices over smbus2: the bus contract, one module per chip, and a
register-level fake bus that answers the same calls.

Each chip module keeps its conversions (register bytes -> value) as pure
functions apart from the bus I/O, so they are tested on the datasheet's own
numbers; the device classes only move bytes.
"""
