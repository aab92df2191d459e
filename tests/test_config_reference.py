"""docs/configuration.md is the schema, printed: it cannot drift from what
the validator accepts."""

from pathlib import Path

from anse_hw import config
from anse_hw.config.reference import COMMAND, reference
from anse_hw.model import ServerConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_committed_reference_is_the_generated_one():
    assert DOC.read_text(encoding="utf-8") == reference(), (
        f"docs/configuration.md is out of date; regenerate it: {COMMAND}"
    )


def test_the_reference_shows_the_defaults_a_parsed_config_gets():
    """One source: the default the docs print is the one the daemon uses."""
    parsed = config.parse("sensors: [{name: a, driver: sim}]\nmqtt: {}\n")
    text = reference()
    assert parsed.server == ServerConfig()
    assert f"| `port` | an integer | `{parsed.server.port}` |" in text
    assert f"| `queue` | an integer | `{parsed.mqtt.queue}` |" in text
    assert f'| `topic_prefix` | a string | `"{parsed.mqtt.topic_prefix}"` |' in text
