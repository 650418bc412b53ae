"""``python -m hack.localcluster``."""

import sys

from hack.localcluster.cli import main

sys.exit(main())
