"""The workstation commands the loop prints (alarm descriptions, notices, monitor reports), read as the tools read
them: split as a shell splits the line, then parsed by the tool's own argparse parser."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import shlex
from typing import Mapping, Optional

PREFIX = "python -m mlops_cli."


def parse_printed(command: str, fill: Optional[Mapping[str, str]] = None) -> argparse.Namespace:
    """The arguments ``python -m mlops_cli.<tool> ...`` gives its tool (``mlops_cli.<tool>.build_parser``, or the
    package's ``cli`` module's); ``fill`` (default none) replaces whole words that are placeholders the printed text
    names for the reader to choose (a version ``N``, ``MODEL``). Fails the test, with the parser's message, when the
    command does not parse."""
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"] and words[2].startswith("mlops_cli."), command
    module = importlib.import_module(words[2])
    build = getattr(module, "build_parser", None) or importlib.import_module(f"{words[2]}.cli").build_parser
    argv = [(fill or {}).get(word, word) for word in words[3:]]
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return build().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"{command!r} does not parse: {said.getvalue().strip()}") from None


def quoted_commands(text: str) -> list[str]:
    """The commands ``text`` gives between backticks."""
    return [part for part in text.split("`")[1::2] if part.startswith(PREFIX)]


# The file the other project's app (tests/infra/conftest.py ``other_project``) is synthesized from: the commands its
# templates print name it (--config).
OTHER_PROJECT_CONFIG = "config/other-team.yaml"


def template_strings(node: object) -> list[str]:
    """Every string of a template (``Fn::Join`` joined, other intrinsics as ``<token>``), where a printed command may
    be: alarm descriptions, notices' input templates, functions' environments, jobs' arguments."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in template_strings(item)]
    if isinstance(node, dict):
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            return [separator.join(_joined(part) for part in parts)]
        return [s for key, value in node.items() for s in [key, *template_strings(value)]]
    return []


def _joined(part: object) -> str:
    return part if isinstance(part, str) else "".join(template_strings(part)) if isinstance(part, dict) and "Fn::Join" in part else "<token>"


def printed_commands(text: str) -> list[list[str]]:
    """The first words of each ``python -m mlops_cli.<tool> ...`` in ``text``: the tool and its options up to the
    subcommand (enough to read --env, --model and --config)."""
    return [(PREFIX + rest).split(" ")[:9] for rest in text.split(PREFIX)[1:]]
