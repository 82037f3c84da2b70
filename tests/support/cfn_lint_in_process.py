"""cfn-lint run inside the test process, on the command line the product runs (``mlops_loop.tools.lint.command``).

Each cfn-lint process spends about 1.3 CPU-seconds starting (importing its rules, sympy and networkx) before
it reads a template; the suite lints some 25 times. In the test process cfn-lint is imported once and then
runs the very command line, configuration and environment the product's process would get: the same
``main()`` the ``cfn-lint`` script calls, in :data:`mlops_loop.tools.lint.REPO_ROOT`, with the variables of
``isolated_from_the_user`` set, its output and exit status handed back as a finished process would. The lint
as a process stays under test in tests/infra/test_lint.py, which runs it that way.

Nor are its rules loaded again for each run: a cfn-lint process loads them once (each rule module executed, the
data files of its rules parsed: about 0.3 CPU-s) and then runs every template it is given through the same rule
objects, configuring and initializing each rule again for each template. The runs of a test process go through the
rules its first run loaded, as one process's templates do (``_loaded_once``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import Iterator, Optional, Sequence

from mlops_loop.tools import lint

# The product's start, a cfn-lint process (read when this module is first imported: before the suite's
# conftest puts :func:`start` in its place).
PROCESS_START = lint._start


class Finished:
    """What ``lint._findings`` reads of a cfn-lint process that has ended: its output and exit status."""

    def __init__(self, stdout: str, stderr: str, returncode: int) -> None:
        self._stdout, self._stderr, self.returncode = stdout, stderr, returncode

    def communicate(self) -> tuple[str, str]:
        return self._stdout, self._stderr

    def poll(self) -> Optional[int]:
        return self.returncode

    def kill(self) -> None:
        """Nothing to stop: it has ended."""


# The rules cfn-lint loaded in this process, by where it loaded them from (the configuration's rule sources).
_RULES: dict = {}


@contextlib.contextmanager
def _loaded_once() -> Iterator[None]:
    """While in effect, a cfn-lint run loads its rules only if no earlier run of this process loaded them from the same
    sources; else it gets those rule objects (their record of the rules used, read by some output formats, emptied)."""
    from cfnlint.runner.cli import Runner

    load = Runner._get_rules

    def get_rules(runner: Runner) -> None:
        key = (tuple(runner.config.append_rules), repr(runner.config.custom_rules))
        if key in _RULES:
            runner.rules = _RULES[key]
            runner.rules._used_rules = {}
        else:
            load(runner)
            _RULES[key] = runner.rules

    Runner._get_rules = get_rules
    try:
        yield
    finally:
        Runner._get_rules = load


def start(paths: Sequence[Path], region: str, home: str) -> Finished:
    """``lint._start``'s cfn-lint run, in this process; returns once it has ended."""
    from cfnlint.runner.cli import main

    argv = lint.command(paths, region)
    variables = lint.isolated_from_the_user(home)
    saved = {name: os.environ.get(name) for name in variables}
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    code: object = 0
    os.environ.update(variables)
    sys.argv = [argv[0], *argv[1:]]
    os.chdir(lint.REPO_ROOT)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), _loaded_once():
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    # sys.exit(None) is status 0; a message (not a number) is status 1, as the interpreter would exit.
    returncode = 0 if code is None else code if isinstance(code, int) else 1
    return Finished(stdout.getvalue(), stderr.getvalue() or (str(code) if not isinstance(code, int) and code else ""),
                    returncode)
