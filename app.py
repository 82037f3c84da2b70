#!/usr/bin/env python3
"""CDK entry point: read the config named in cdk.json, validate it once, synthesize every environment.

The config file is the ``mlops-loop:config`` context value (``-c mlops-loop:config=path`` to use
another). Synth makes no AWS call: accounts and regions come from the config only.
"""

import sys

from aws_cdk import App

from mlops_loop.app_builder import build_app, cdk_json_context, code_version
from mlops_loop.config import ConfigError, load_config

CONFIG_CONTEXT_KEY = "mlops-loop:config"


def main() -> None:
    app = App(context=cdk_json_context())
    config_path = app.node.try_get_context(CONFIG_CONTEXT_KEY) or "config/mlops-loop.yaml"
    try:
        config = load_config(config_path)
    except ConfigError as error:
        # A clear message and a non-zero exit, not a stack trace.
        print(f"mlops-loop: {error}", file=sys.stderr)
        sys.exit(2)
    build_app(app, config, stage_code_version=code_version())
    app.synth()


if __name__ == "__main__":
    main()
