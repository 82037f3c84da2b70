"""The ``template-diff`` command line."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from .. import source_stamp
from .compare import compare_assemblies
from .git_synth import (REPO_ROOT, check_assembly, code_changes, defined_in, pinned_config, resolve_ref, run_git,
                        synthesize_ref, synthesize_tree)
from .model import TemplateDiffError
from .render import GITHUB_COMMENT_LIMIT, render_markdown, render_text


def _comment_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 2000")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="template-diff",
        description="Offline CloudFormation diff of a base git ref against the working tree, per environment and stack.",
    )
    parser.add_argument("--base", required=True, help="git ref to compare against (branch, tag or commit)")
    parser.add_argument(
        "--head-assembly", type=Path, help="existing cloud assembly for the head side (default: synthesize the working tree)"
    )
    parser.add_argument("--base-out", type=Path, help="keep the base assembly in this new or empty directory (default: a temp dir)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text", help="output format (default: text)")
    parser.add_argument("--output", type=Path, help="write the diff to this file (default: stdout)")
    parser.add_argument("--env", nargs="+", metavar="ENV", help="only these environments (default: all)")
    parser.add_argument(
        "--max-chars",
        type=_comment_size,
        default=GITHUB_COMMENT_LIMIT,
        help=f"markdown size cap; details are cut first (default: {GITHUB_COMMENT_LIMIT}, GitHub's comment limit)",
    )
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="git checkout to diff (default: the one holding this tool)")
    parser.add_argument(
        "--allow-stale",
        action="store_true",
        help="read a --head-assembly not synthesized from the working tree as it is now, with a warning (default: refuse it)",
    )
    return parser


def _check_head_assembly(path: Path, *, repo: Path, allow_stale: bool) -> None:
    """TemplateDiffError unless ``path`` was synthesized from ``repo`` as it is now, with the config selected now
    (the base is synthesized with that one), a warning with ``allow_stale``."""
    try:
        warning = source_stamp.require_fresh(path, repo=repo, allow_stale=allow_stale, name=f"--head-assembly {path}",
                                             current_config=True)
    except source_stamp.StaleAssembly as error:
        raise TemplateDiffError(str(error)) from error
    if warning:
        print(f"template-diff: {warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> str:
    """Produce the rendered diff for parsed CLI ``args``; TemplateDiffError on bad input."""
    repo = args.repo.resolve()
    if args.head_assembly is not None:
        check_assembly(args.head_assembly, option="--head-assembly")
    if args.base_out is not None and args.base_out.exists() and (not args.base_out.is_dir() or any(args.base_out.iterdir())):
        raise TemplateDiffError(f"--base-out {args.base_out}: exists and is not an empty directory; give a new or empty one")
    resolve_ref(repo, args.base)  # fail fast, before any synthesis
    # A sub-directory of the checkout works too: synthesize from its top level, where app.py is.
    repo = Path(run_git(repo, "rev-parse", "--show-toplevel").stdout.strip())
    if args.head_assembly is not None:
        # Before the base synth: a stale head is refused in a second, not after a minute of synth.
        _check_head_assembly(args.head_assembly, repo=repo, allow_stale=args.allow_stale)
    # With --env, only those environments are synthesized, except into a --base-out, which the cost floor reads whole.
    with tempfile.TemporaryDirectory(prefix="template-diff-") as scratch:
        base_out = args.base_out or Path(scratch) / "base.out"
        synthesize_ref(repo, ref=args.base, outdir=base_out, environments=None if args.base_out else args.env)
        if args.head_assembly is not None:
            head_out, head_label = args.head_assembly, str(args.head_assembly)
        else:
            head_out = synthesize_tree(repo, outdir=Path(scratch) / "head.out", label="the working tree",
                                       environments=defined_in(repo, args.env, pinned_config(repo)))
            head_label = "working tree"
        diff = compare_assemblies(base_out, head_out, environments=args.env)
        if diff.assets_changed:
            # The hashes say only that code changed; the commit subjects say what (the base is a ref of this repo).
            diff.code_changes = code_changes(repo, args.base)
        title = f"Template diff: `{args.base}` → {head_label}"
        if args.format == "markdown":
            return render_markdown(diff, title=title, limit=args.max_chars)
        return render_text(diff, title=title.replace("`", "").replace("→", "->"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        text = run(args)
    except TemplateDiffError as error:
        print(f"template-diff: {error}", file=sys.stderr)
        return 2
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
