"""`python -m anse_hw` runs the same command line as the `anse-hw` script."""

import sys

from anse_hw.app.cli import main

sys.exit(main())
