"""Print a dataset's declaration as the jobs read it (``--dataset <file>``), from the configuration::

    python -m mlops_cli.local.declare customer_churn > /tmp/customer_churn.json

The declaration comes through the loader synth uses, so a dataset synth would refuse is refused here too,
with the same one-line-per-field message.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from mlops_cli.local.run_loop import DEFAULT_CONFIG


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_cli.local.declare", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset declared under 'datasets' in the configuration")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="configuration file (default: MLOPS_LOOP_CONFIG's file, else "
                        "config/mlops-loop.yaml)")
    args = parser.parse_args(argv)
    # Imported here: a workstation tool reading the YAML with the synth loader.
    from mlops_loop.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    if args.dataset not in config.datasets:
        print(f"ERROR: unknown dataset {args.dataset!r}; declared: {', '.join(sorted(config.datasets))}", file=sys.stderr)
        return 1
    print(json.dumps(config.datasets[args.dataset].to_declaration(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
