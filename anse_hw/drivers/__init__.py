"""Sensors and actuators: each real driver and its fake behind one interface."""
