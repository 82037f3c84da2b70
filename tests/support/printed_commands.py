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
