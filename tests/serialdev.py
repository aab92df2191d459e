"""An emulated serial device on a pseudo-terminal.

The test writes real frames into the master side; the driver opens the slave
path with pyserial exactly as it would /dev/ttyUSB0.  `link` gives the device a
stable path (like /dev/serial/by-id/...) so it can be unplugged and plugged in
again as a new pty behind the same name.
"""

from __future__ import annotations

import os
import pty
import tty
from pathlib import Path


class PtyDevice:
    def __init__(self, link: Path | None = None) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # no echo, no CR/LF translation: a byte is a byte
        self.tty = os.ttyname(self.slave)
        self.link = link
        if link is not None:
            link.unlink(missing_ok=True)
            link.symlink_to(self.tty)
        self.path = str(link or self.tty)
        self.plugged = True

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        """What pulling a USB adapter looks like to the reader: EIO, then no path."""
        if not self.plugged:
            return
        self.plugged = False
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        os.close(self.master)
        os.close(self.slave)

    close = unplug
