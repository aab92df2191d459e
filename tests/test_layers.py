"""The core stands apart from the I/O (docs/architecture.md).

`lint-imports` (run by .ci/run) checks the import graph statically; this
checks what a fresh interpreter actually loads: someone writing a new sink
or a tool against the engine does not pull in the YAML loader, the web
stack, the serial port or the GPIO library.
"""

from __future__ import annotations

import subprocess
import sys

IO_LIBRARIES = ("yaml", "websockets", "serial", "gpiozero", "aiomqtt", "mcap")


def test_importing_the_engine_loads_no_io_library():
    code = (
        "import sys\n"
        "import anse_hw.engine\n"
        f"print(' '.join(m for m in {IO_LIBRARIES!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"import anse_hw.engine loaded {done.stdout.strip()}"
