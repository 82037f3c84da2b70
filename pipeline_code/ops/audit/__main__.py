"""``python -m pipeline_code.ops.audit``: see :mod:`pipeline_code.ops.audit.cli`."""

import sys

from .cli import main

sys.exit(main())
