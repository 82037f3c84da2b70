"""``python -m pipeline_code.training.model_card``: see :mod:`pipeline_code.training.model_card.cli`."""

import sys

from pipeline_code.training.model_card.cli import main

sys.exit(main())
