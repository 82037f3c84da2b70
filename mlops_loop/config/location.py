"""Which file is the app's config, for the workstation tools, which read the infrastructure only through this
package: the definitions are :mod:`mlops_loop.cdk_json`'s (standard library only, as the source stamp needs)."""

from ..cdk_json import CONFIG_CONTEXT_KEY, DEFAULT_CONFIG, configured_path

__all__ = ["CONFIG_CONTEXT_KEY", "DEFAULT_CONFIG", "configured_path"]
