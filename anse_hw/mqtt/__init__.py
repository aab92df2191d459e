"""The MQTT adapter: a bridge that publishes the event stream and Home
Assistant discovery to a broker and takes the operator's commands from it."""
