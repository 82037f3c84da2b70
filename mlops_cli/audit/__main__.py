"""``python -m mlops_cli.audit``: see :mod:`mlops_cli.audit.cli`."""

import sys

from .cli import main

sys.exit(main())
