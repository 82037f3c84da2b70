"""``python -m mlops_loop.tools.template_diff``: see the package docstring."""

import sys

from .cli import main

sys.exit(main())
