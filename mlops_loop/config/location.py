"""Which file is the app's config, and which CDK bootstrap qualifier it deploys through, for the workstation tools,
which read the infrastructure only through this package: the definitions are :mod:`mlops_loop.cdk_json`'s (standard
library only, as the source stamp needs)."""

from ..cdk_json import CONFIG_CONTEXT_KEY, DEFAULT_CONFIG, bootstrap_qualifier, configured_path

__all__ = ["CONFIG_CONTEXT_KEY", "DEFAULT_CONFIG", "bootstrap_qualifier", "configured_path"]
