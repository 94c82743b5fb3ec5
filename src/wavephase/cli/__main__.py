import sys

from wavephase.cli.main import main

sys.exit(main())
