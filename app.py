#!/usr/bin/env python3
"""CDK entry point: read the config named in cdk.json, validate it once, synthesize every environment.

The config file is the ``mlops-loop:config`` context value (``-c mlops-loop:config=path`` to use
another). Synth makes no AWS call: accounts and regions come from the config only. The assembly gets
a source stamp (``mlops-loop-source.json``: commit and synth inputs, see
``mlops_loop.tools.source_stamp``) so the review tools can tell whether it still matches the tree.
"""

import sys
from pathlib import Path

from mlops_loop.app_builder import REPO_ROOT, build_app, code_version, new_app
from mlops_loop.config import ConfigError, load_config
from mlops_loop.tools import source_stamp

CONFIG_CONTEXT_KEY = "mlops-loop:config"


def main() -> None:
    app = new_app()
    config_path = app.node.try_get_context(CONFIG_CONTEXT_KEY) or "config/mlops-loop.yaml"
    # Taken before the config is read and the stacks are built (the slow part), so an edit made during
    # synth leaves the assembly stale rather than mislabelled.
    source = source_stamp.fingerprint(REPO_ROOT, config=Path(config_path).resolve())
    try:
        config = load_config(config_path)
    except ConfigError as error:
        # A clear message and a non-zero exit, not a stack trace.
        print(f"mlops-loop: {error}", file=sys.stderr)
        sys.exit(2)
    for warning in config.warnings():
        print(f"mlops-loop: warning: {warning}", file=sys.stderr)
    build_app(app, config, code_version=code_version())
    source_stamp.write_stamp(app.synth().directory, source)


if __name__ == "__main__":
    main()
