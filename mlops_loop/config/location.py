"""Which file is the app's config, and which CDK bootstrap qualifier it deploys through: one resolution for app.py
(``cdk synth`` / ``cdk deploy``) and every workstation tool, which read the infrastructure only through this package.

The config file is, in this order of precedence (:func:`resolve_config`):

1. the ``mlops-loop:config`` context when the ``cdk`` command is given one (``-c mlops-loop:config=<file>``, or the
   key set in cdk.json, cdk.context.json or ~/.cdk.json; the repository's cdk.json sets none): one command's explicit
   word wins;
2. the ``MLOPS_LOOP_CONFIG`` environment variable: THE way to run a second project from one checkout - exported
   once, ``cdk synth``, ``cdk deploy`` and every tool's default ``--config`` read the same file, so no command
   left without ``-c`` or ``--config`` acts on another project;
3. ``config/mlops-loop.yaml``.

A relative path is from the repository's top level (where ``cdk`` and the tools run). When the context and the
variable name different files the context wins, and :meth:`ConfigLocation.warning` says so (app.py prints it).

The definitions of cdk.json's reading are :mod:`mlops_loop.cdk_json`'s (standard library only, as the source stamp
needs)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from ..cdk_json import CDK_JSON, CONFIG_CONTEXT_KEY, DEFAULT_CONFIG, bootstrap_qualifier, persistent_context

__all__ = ["CONFIG_CONTEXT_KEY", "CONFIG_ENV", "ConfigLocation", "DEFAULT_CONFIG", "bootstrap_qualifier", "configured",
           "configured_path", "resolve_config"]

# The environment variable naming the config file, below a given context and above the default.
CONFIG_ENV = "MLOPS_LOOP_CONFIG"
_REPO_ROOT = CDK_JSON.parent


@dataclass(frozen=True)
class ConfigLocation:
    """The config file to read (``path`` as its source gives it) and what chose it: ``"context"`` (the
    ``mlops-loop:config`` context), ``"environment"`` (``MLOPS_LOOP_CONFIG``) or ``"default"``; ``overridden`` is
    MLOPS_LOOP_CONFIG's value when a context naming another file won over it (None otherwise)."""

    path: str
    chosen_by: str
    overridden: Optional[str] = None

    @property
    def absolute(self) -> Path:
        """:attr:`path`, a relative one taken from the repository's top level."""
        path = Path(self.path).expanduser()
        return path if path.is_absolute() else _REPO_ROOT / path

    @property
    def cli_config(self) -> Optional[str]:
        """The ``--config`` the workstation commands an app of this config prints must name: None for the default
        config (every tool's default, however this location names it), else the file relative to the repository's top
        level when it is in the repository (where the tools run, in any checkout), else its absolute path. Run as
        printed without it, a tool would read the default config: another project's environments."""
        absolute = self.absolute.resolve()
        if absolute == (_REPO_ROOT / DEFAULT_CONFIG).resolve():
            return None
        try:
            return absolute.relative_to(_REPO_ROOT.resolve()).as_posix()
        except ValueError:
            return str(absolute)

    def warning(self) -> Optional[str]:
        """One line when the context overrode a different ``MLOPS_LOOP_CONFIG``, else None: an exported variable
        that a command's ``-c`` (or a context file) silently beat would leave the tools reading another file."""
        if self.overridden is None:
            return None
        return (f"context '{CONFIG_CONTEXT_KEY}' names {self.path}, which wins over {CONFIG_ENV}={self.overridden}; "
                f"drop the one you did not mean, so that synth, deploy and the tools read the same config")


def resolve_config(context: Any = None, environ: Optional[Mapping[str, str]] = None) -> ConfigLocation:
    """The config file named by ``context`` (the ``mlops-loop:config`` context value; None or "" when not given),
    else by ``MLOPS_LOOP_CONFIG`` in ``environ`` (default: this process's environment; empty counts as unset), else
    ``config/mlops-loop.yaml``."""
    variable = ((os.environ if environ is None else environ).get(CONFIG_ENV) or "").strip() or None
    if context is not None and str(context).strip():
        given = str(context).strip()
        differs = variable is not None and _absolute(variable) != _absolute(given)
        return ConfigLocation(given, "context", variable if differs else None)
    if variable is not None:
        return ConfigLocation(variable, "environment")
    return ConfigLocation(DEFAULT_CONFIG, "default")


def configured(environ: Optional[Mapping[str, str]] = None, *, directory: Optional[Path] = None,
               home: Optional[Path] = None) -> ConfigLocation:
    """The config ``cdk synth`` run without ``-c`` in ``directory`` (default: this repository) reads, which is every
    tool's default ``--config``: :func:`resolve_config` of the context the CDK CLI's files set (cdk.json,
    cdk.context.json, then ``home``'s ~/.cdk.json; ``mlops_loop.cdk_json.persistent_context``) and ``environ``."""
    found = persistent_context(CONFIG_CONTEXT_KEY, directory, home)
    return resolve_config(found[0] if found else None, environ)


def configured_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """:func:`configured`'s file, as an absolute path."""
    return configured(environ).absolute


def _absolute(path: str) -> Path:
    return ConfigLocation(path, "").absolute.resolve()
