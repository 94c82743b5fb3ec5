"""``python -m wavephase``: the command line."""

import sys

from wavephase.cli.main import main

sys.exit(main())
