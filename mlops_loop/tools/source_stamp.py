"""Which source tree a cloud assembly was synthesized from, and whether the working tree still is that tree.

``python app.py`` (so also ``cdk synth`` and ``scripts/synth.sh``) writes ``mlops-loop-source.json``
into the assembly directory: the git commit, whether the synth inputs had uncommitted changes, the
config file used and a SHA-256 of every synth input file (see ``input_pathspecs``). The tools that read
an existing assembly as "the working tree" (the template diff's ``--head-assembly``, the cost floor,
``scripts/pr-report.sh``) compare that stamp with the tree as it is now and refuse a stale or foreign
assembly with one line naming the assembly, what it was built from, what the tree is now and the fix.
An assembly without a stamp (an older synth) or with an unknown source (git unavailable at synth)
counts as stale, and so does one of some environments only (``-c mlops-loop:environments=dev``, which
the stamp records). So does, for those workstation tools (``check --selected-config``), one synthesized with
another config than the one selected now (``MLOPS_LOOP_CONFIG``: another project). Their ``--allow-stale``
reads it anyway, with a warning.

Usage::

    python -m mlops_loop.tools.source_stamp check [cdk.out] [--repo DIR] [--selected-config] [--digest sha256:...]
    python -m mlops_loop.tools.source_stamp digest [cdk.out]

Exit 0 when the assembly was synthesized from the tree as it is now, 1 with the refusal on stderr
when it was not, 2 when the directory is not a cloud assembly.

``digest`` prints the assembly's digest (:func:`assembly_digest`: one sha256 over every file's path and bytes). The
deploy workflow's build records it once, and each environment's deploy job checks it (``check --digest``) before it
deploys and writes it in its summary: the proof, in the run, that every environment deployed the bytes that were tested.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from mlops_loop.cdk_json import CONFIG_CONTEXT_KEY, DEFAULT_CONFIG  # noqa: F401  (their users read them here)

REPO_ROOT = Path(__file__).resolve().parents[2]
STAMP_FILE = "mlops-loop-source.json"
SCHEMA_VERSION = 1
INPUT_PATHS = ("app.py", "cdk.json", "config", "mlops_loop", "pipeline_code", "requirements.lock")
EXCLUDED_PATHS = ("mlops_loop/tools",)
GIT_TIMEOUT_SECONDS = 10
FIX = "run bash scripts/synth.sh first (or pass --allow-stale to read it anyway)"
SHOWN_CHANGES = 3
DELETED = "deleted"
# Context keys app.py reads: the config file (CONFIG_CONTEXT_KEY, default DEFAULT_CONFIG, from mlops_loop.cdk_json),
# and the environments to synthesize (comma-separated; default: every one in the config).
ENVIRONMENTS_CONTEXT_KEY = "mlops-loop:environments"


class StaleAssembly(Exception):
    """The assembly was not synthesized from the tree as it is now; ``str()`` is the one-line refusal."""


class _GitUnavailable(Exception):
    pass


@dataclass(frozen=True)
class SourceStamp:
    """Where an assembly came from. ``commit`` is None for an unknown source, and ``error`` says why."""

    commit: Optional[str]
    uncommitted: bool = False
    config: str = DEFAULT_CONFIG
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of its content, or DELETED
    error: Optional[str] = None
    environments: Optional[tuple[str, ...]] = None  # the environments synthesized, when not all of them

    @property
    def known(self) -> bool:
        return self.commit is not None

    @property
    def inputs_sha256(self) -> str:
        """One digest over every input path and content (what a person compares by eye)."""
        lines = "".join(f"{path}\0{digest}\n" for path, digest in sorted(self.files.items()))
        return hashlib.sha256(lines.encode()).hexdigest()

    def describe(self) -> str:
        """``1a2b3c4`` or ``1a2b3c4 + uncommitted changes`` (``unknown (why)`` for an unknown source)."""
        if self.commit is None:
            return f"unknown ({self.error})"
        return self.commit[:7] + (" + uncommitted changes" if self.uncommitted else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "commit": self.commit,
            "uncommitted_changes": self.uncommitted,
            "config": self.config,
            "inputs_sha256": self.inputs_sha256,
            "files": dict(sorted(self.files.items())),
            "error": self.error,
            "environments": list(self.environments) if self.environments is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SourceStamp":
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            return cls(commit=None, error=f"{STAMP_FILE} has schema version {version!r}, expected {SCHEMA_VERSION}")
        return cls(
            commit=data["commit"],
            uncommitted=bool(data["uncommitted_changes"]),
            config=data["config"],
            files=dict(data["files"]),
            error=data.get("error"),
            environments=tuple(data["environments"]) if data.get("environments") is not None else None,
        )


def input_pathspecs(config: str = DEFAULT_CONFIG) -> list[str]:
    """The git pathspecs of the synth inputs: every file under them, tracked or untracked-not-ignored.

    What ``python app.py`` reads to write the templates: ``app.py`` (the entry point), ``cdk.json``
    (feature flags and the config's name), ``config/`` (environments and models), ``mlops_loop/`` (the
    constructs and stacks), ``pipeline_code/`` (zipped into the job-code assets; the config imports its
    catalog) and ``requirements.lock`` (pins aws-cdk-lib and cdk-nag, which write the templates), plus
    the config file in use when it lies elsewhere in the repository. Left out, because they shape no
    template: ``mlops_loop/tools/`` (the review tools only read an assembly, so fixing a tool does not
    make cdk.out stale), ``tests/``, ``scripts/``, docs and ``package*.json`` (the CDK CLI only runs the
    app). Ignored files (``cdk.out``, ``.venv``, ``__pycache__``) never count.
    """
    extra = [f":(literal){config}"] if not Path(config).is_absolute() and not _under_inputs(config) else []
    return [*INPUT_PATHS, *extra, *(f":(exclude){path}" for path in EXCLUDED_PATHS)]


def _under_inputs(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in INPUT_PATHS)


def _git(repo: Path, *args: str) -> str:
    # --no-optional-locks: `git status` must not take the index lock from someone working in the tree.
    try:
        proc = subprocess.run(
            ["git", "--no-optional-locks", *args], cwd=repo, capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS
        )
    except FileNotFoundError as error:
        raise _GitUnavailable("git is not installed") from error
    except (OSError, subprocess.TimeoutExpired) as error:
        raise _GitUnavailable(f"git {args[0]} failed: {error}") from error
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
        raise _GitUnavailable(f"git {args[0]}: {first}")
    return proc.stdout


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return DELETED
    except OSError as error:
        return f"unreadable: {error.strerror}"


def _config_key(top: Path, config: str | Path) -> str:
    """The config's path relative to the repository (absolute when it lies outside it)."""
    path = Path(config)
    absolute = (path if path.is_absolute() else top / path).resolve()
    try:
        return absolute.relative_to(top.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def _toplevel_and_commit(repo: Path) -> tuple[Path, str]:
    lines = _git(repo, "rev-parse", "--show-toplevel", "HEAD").splitlines()
    if len(lines) != 2:
        raise _GitUnavailable(f"git rev-parse: unexpected output {lines!r}")
    return Path(lines[0]), lines[1]


def fingerprint(repo: Path = REPO_ROOT, *, config: str | Path = DEFAULT_CONFIG) -> SourceStamp:
    """The stamp of the tree at ``repo`` as it is now (an unknown source when git cannot tell).

    ``config`` is the config file synth reads (default ``config/mlops-loop.yaml``; a relative path is
    from the repository's top level). Local git only: three git commands and one read of each input.
    """
    try:
        top, commit = _toplevel_and_commit(repo)
        key = _config_key(top, config)
        specs = input_pathspecs(key)
        listed = _git(top, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *specs)
        status = _git(top, "status", "--porcelain", "-z", "--untracked-files=all", "--", *specs)
    except _GitUnavailable as error:
        return SourceStamp(commit=None, config=str(config), error=str(error))
    files = {path: _sha256(top / path) for path in sorted(set(listed.split("\0")) - {""})}
    outside = Path(key).is_absolute()
    if outside:
        files[key] = _sha256(Path(key))
    # A config outside the repository is in no commit: that is an uncommitted input too.
    return SourceStamp(commit=commit, uncommitted=bool(status) or outside, config=key, files=files)


DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


def assembly_digest(assembly: str | Path) -> str:
    """``sha256:<hex>`` over every file under ``assembly`` (dotfiles included): its path relative to the assembly and
    the sha256 of its bytes, in path order; so any byte, file added, removed or renamed changes it, and neither the
    order files were written in nor their times do."""
    root = Path(assembly)
    lines = []
    for directory, _, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(directory) / name
            lines.append(f"{path.relative_to(root).as_posix()}\0{_sha256(path)}\n")
    return "sha256:" + hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def write_stamp(assembly: str | Path, stamp: SourceStamp) -> Path:
    """Write ``stamp`` into the assembly directory; returns the file's path."""
    path = Path(assembly) / STAMP_FILE
    path.write_text(json.dumps(stamp.to_json(), indent=1) + "\n", encoding="utf-8")
    return path


def read_stamp(assembly: str | Path) -> SourceStamp:
    """The assembly's stamp; an unknown source when it has none or it cannot be read."""
    path = Path(assembly) / STAMP_FILE
    if not path.is_file():
        return SourceStamp(commit=None, error=f"no {STAMP_FILE}: an older synth, or not by app.py")
    try:
        return SourceStamp.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return SourceStamp(commit=None, error=f"unreadable {STAMP_FILE}: {type(error).__name__}")


def _changed_inputs(built: SourceStamp, now: SourceStamp) -> str:
    if not (built.known and now.known):
        return ""
    changed = sorted(p for p in built.files.keys() | now.files.keys() if built.files.get(p) != now.files.get(p))
    if not changed:
        return ""
    shown = ", ".join(changed[:SHOWN_CHANGES])
    more = f" and {len(changed) - SHOWN_CHANGES} more" if len(changed) > SHOWN_CHANGES else ""
    return f" (synth inputs changed: {shown}{more})"


def selected_config(repo: Path = REPO_ROOT) -> tuple[str, str]:
    """The config ``cdk synth`` run in ``repo`` without ``-c`` reads now, as :func:`_config_key` names it, and what
    selects it (``MLOPS_LOOP_CONFIG``, the context, the default): ``mlops_loop.config.location.configured``.

    Not standard library only (it imports the config package): the workstation tools ask it, the deploy workflow's
    ``check`` does not (its synth job's variable may differ from the deploy job's environment)."""
    from mlops_loop.config.location import CONFIG_ENV, configured

    location = configured(directory=repo)
    by = {"environment": CONFIG_ENV, "context": f"context '{CONFIG_CONTEXT_KEY}'"}.get(location.chosen_by, "the default")
    return _config_key(repo, location.path), by


def stale_reason(assembly: str | Path, *, repo: Path = REPO_ROOT, name: Optional[str] = None,
                 current_config: bool = False) -> Optional[str]:
    """None when ``assembly`` was synthesized from the tree at ``repo`` as it is now (same commit, same
    synth inputs), else why not: ``<name> was synthesized from X, the tree is now Y (...)``.

    ``name`` is how the message names the assembly (default: the path as given). ``current_config``: also stale
    when it was synthesized with another config than the one selected now (:func:`selected_config`; default: the
    config the stamp names is the one compared, whichever is selected).
    """
    built = read_stamp(assembly)
    if built.known and built.environments is not None:
        return (f"{name or assembly} holds environment(s) {', '.join(built.environments)} only "
                f"(synthesized with -c {ENVIRONMENTS_CONTEXT_KEY}=...), not the whole app")
    if built.known and current_config:
        config, by = selected_config(repo)
        if config != built.config:
            # Fresh for its own config, but another project than the one every command now reads.
            return f"{name or assembly} was synthesized with config {built.config}, the config selected now is {config} ({by})"
    now = fingerprint(repo, config=built.config if built.known else DEFAULT_CONFIG)
    if built.known and now.known and built.commit == now.commit and built.files == now.files:
        return None
    source = built.describe() if built.known else f"an unknown source ({built.error})"
    changed = _changed_inputs(built, now)
    return f"{name or assembly} was synthesized from {source}, the tree is now {now.describe()}{changed}"


def refusal(reason: str) -> str:
    return f"{reason}: {FIX}"


def warning(reason: str) -> str:
    return f"warning: {reason}; reading it anyway (--allow-stale)"


def require_fresh(
    assembly: str | Path, *, repo: Path = REPO_ROOT, allow_stale: bool = False, name: Optional[str] = None,
    current_config: bool = False,
) -> Optional[str]:
    """None when ``assembly`` matches the tree at ``repo`` (and, with ``current_config``, the config selected now:
    :func:`stale_reason`); otherwise StaleAssembly with the refusal, or, with ``allow_stale``, the warning for the
    caller to print before it reads the assembly anyway."""
    reason = stale_reason(assembly, repo=repo, name=name, current_config=current_config)
    if reason is None:
        return None
    if allow_stale:
        return warning(reason)
    raise StaleAssembly(refusal(reason))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_loop.tools.source_stamp",
        description="Check that a cloud assembly was synthesized from the working tree as it is now.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="exit 0 when fresh, 1 with one line on stderr when stale")
    check.add_argument("assembly", nargs="?", default="cdk.out", help="the cloud assembly directory (default: cdk.out)")
    check.add_argument(
        "--repo", type=Path, default=REPO_ROOT,
        help="the source tree to compare with (default: the checkout holding this tool)",
    )
    check.add_argument(
        "--selected-config", action="store_true",
        help="also refuse an assembly synthesized with another config than the one synth reads now (MLOPS_LOOP_CONFIG, "
             "the mlops-loop:config context, else the default); imports the config package (default: the stamp's "
             "own config is compared, standard library only)",
    )
    check.add_argument(
        "--digest", default=None,
        help="also refuse an assembly whose digest (what the digest command prints) is not this one: the build's "
             "(default: the digest is not checked)",
    )
    digest = commands.add_parser("digest", help="print the assembly's digest (sha256 over every file's path and bytes)")
    digest.add_argument("assembly", nargs="?", default="cdk.out", help="the cloud assembly directory (default: cdk.out)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if not (Path(args.assembly) / "manifest.json").is_file():
        message = f"{args.assembly} is not a cloud assembly (no manifest.json); run bash scripts/synth.sh"
        print(f"source-stamp: {message}", file=sys.stderr)
        return 2
    if args.command == "digest":
        print(assembly_digest(args.assembly))
        return 0
    if args.digest is not None and not re.match(DIGEST_PATTERN, args.digest):
        print(f"source-stamp: --digest {args.digest!r}: not an assembly digest (sha256:<64 hex digits>, what `python -m "
              "mlops_loop.tools.source_stamp digest` prints); is the build job's output assembly-digest passed?",
              file=sys.stderr)
        return 2
    reason = stale_reason(args.assembly, repo=args.repo, current_config=args.selected_config)
    if reason is not None:
        print(f"source-stamp: {refusal(reason)}", file=sys.stderr)
        return 1
    line = f"{args.assembly}: synthesized from {read_stamp(args.assembly).describe()}, the tree as it is now"
    if args.digest is not None:
        digest = assembly_digest(args.assembly)
        if digest != args.digest:
            print(f"source-stamp: {args.assembly} is not the assembly the build recorded: its digest is {digest}, the "
                  f"build's {args.digest}; deploy the build's own artifact (re-run the whole workflow)", file=sys.stderr)
            return 1
        line += f"; digest {digest}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
