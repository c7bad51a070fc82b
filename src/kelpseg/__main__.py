"""``python -m kelpseg``: the same command as the ``kelpseg`` console script."""

import sys

from kelpseg.cli.app import main

sys.exit(main())
