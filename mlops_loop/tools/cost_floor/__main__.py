"""``python -m mlops_loop.tools.cost_floor``: see :mod:`mlops_loop.tools.cost_floor.cli`."""

import sys

from .cli import main

sys.exit(main())
