"""``python -m orchestrator.cli``: the same as the ``creature`` console script."""

import sys

from orchestrator.cli.main import main

sys.exit(main())
