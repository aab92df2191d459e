"""The MQTT adapter: many robots on one broker, Home Assistant on top.

bridge.py is the sink and its connection, discovery.py Home Assistant's
payload, inbound.py the bound on what the broker may send us.
"""

from anse_hw.mqtt.bridge import MqttBridge

__all__ = ["MqttBridge"]
