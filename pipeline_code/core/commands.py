"""The workstation commands the loop prints for people (``python -m mlops_cli.<tool> --env <env> ...``): one way to
write them, so that what an alarm, a notice or a monitor report says can be pasted and run as printed.

``--env`` comes first (each tool's top-level parser takes ``--env``, ``--model`` and ``--config`` before its
subcommand), then ``--model`` when the command is about one model, then ``--config`` when the app was synthesized
from another config than the default one (the tools' default ``--config`` would read another project's
environments), then the subcommand and its own options as the caller writes them.
"""

from __future__ import annotations

import shlex
from typing import Optional

# The module every printed command runs: python -m mlops_cli.<tool>.
CLI_MODULE = "mlops_cli"


def cli_command(tool: str, command: str, *, environment: Optional[str], model: Optional[str] = None,
                config: Optional[str] = None, model_option: bool = True) -> str:
    """``python -m mlops_cli.<tool> --env <environment> [--model <model>] [--config <config>] <command>``.

    ``environment`` / ``model`` not known (None or blank) print as ``<env>`` / ``<model>`` for the reader to fill in;
    ``model_option=False`` leaves ``--model`` out (a command about every model of the environment). ``config`` None (the
    default) leaves ``--config`` out: the tools then read the default config, the one the app was synthesized from.
    Values are shell-quoted when they need it; ``command`` is written as given (it may hold placeholders of its own)."""
    words = [f"python -m {CLI_MODULE}.{tool}", "--env", _word(environment, "<env>")]
    if model_option:
        words += ["--model", _word(model, "<model>")]
    if config is not None and config.strip():
        words += ["--config", shlex.quote(config.strip())]
    return " ".join(words + ([command] if command else []))


def _word(value: Optional[str], placeholder: str) -> str:
    value = (value or "").strip()
    return shlex.quote(value) if value else placeholder
