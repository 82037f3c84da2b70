"""Offline template diff for pull-request review: base git ref vs the working tree, per environment and stack.

Usage::

    python -m mlops_loop.tools.template_diff --base REF [--head-assembly DIR] [--base-out DIR]
        [--format text|markdown] [--output FILE] [--env ENV ...] [--max-chars N] [--repo DIR] [--allow-stale]

The base ref is checked out into a temporary ``git worktree`` and synthesized there with
``python app.py`` (``CDK_OUTDIR`` set, Node 22 from ``node_modules/.bin`` first on PATH); the head side
is the working tree, synthesized the same way unless ``--head-assembly`` names an existing cloud
assembly (e.g. ``cdk.out`` from ``scripts/synth.sh``), which must have been synthesized from the
working tree as it is now, with the config selected now (its source stamp, see
``mlops_loop.tools.source_stamp``; ``--allow-stale`` reads a stale one with a warning). When
``MLOPS_LOOP_CONFIG`` (or a context file outside the tree's cdk.json) selects the config, both sides are
synthesized with it (``git_synth.pinned_config``), so a base whose cdk.json names another config still builds
the same project. The base assembly is stamped with the base commit. Nothing talks to AWS.

Stacks are matched as ``cdk deploy`` treats them, by target (account and region) and stack name: a stack whose
target or name changed (a region, account or project change, a renamed environment) is a move, a new stack
created beside the old one, which is left as it is; a stack the app no longer has is left running, never deleted.
Per environment and stack it reports resources added / removed / modified / replaced (a modified
resource whose changed properties include one that causes replacement, as ``@aws-cdk/cloudformation-diff``
-- the comparison ``cdk diff`` runs -- decides from its resource specification), and calls out first: stacks
moved or left running, stateful resources whose data is at risk, serving that stops, updates that fail (an
endpoint switched to serverless, an autoscaled variant moved to another instance type), running work (a role or its
statements taken from jobs that may run during the deploy, see :mod:`.running_work`), IAM, security-group, KMS and data-retention changes. Exit 0 when the diff was produced (with or
without changes), 2 with one message when it could not be (bad ref, not a git repository, base
that fails to synthesize, head directory that is not an assembly or not synthesized from the working tree).

Modules: :mod:`.normalise` (what makes two templates comparable), :mod:`.values` (structural diff of
values), :mod:`.impact` (which changes replace a resource, asked of cloudformation-diff), :mod:`.compare` (assemblies, stacks,
resources), :mod:`.callouts` (one rule per review category), :mod:`.running_work` (roles and statements taken from
running work, statements moved between a role's policies), :mod:`.render` (text and GitHub
markdown), :mod:`.git_synth` (synthesizing a ref), :mod:`.cli`.
"""

from .cli import main, run
from .compare import compare_assemblies, diff_resource, diff_stack
from .impact import change_impacts
from .git_synth import check_assembly, resolve_ref, synthesize_ref, synthesize_tree
from .model import (
    CATEGORIES,
    CATEGORY_CONTRACT,
    CATEGORY_COST,
    CATEGORY_DATA_AT_RISK,
    CATEGORY_GOVERNANCE,
    CATEGORY_IMAGE,
    CATEGORY_TUNING,
    CATEGORY_IAM,
    CATEGORY_KMS,
    CATEGORY_LEFT_RUNNING,
    CATEGORY_MOVED,
    CATEGORY_RETENTION,
    CATEGORY_SECURITY_GROUPS,
    CATEGORY_SERVING,
    CATEGORY_RUNNING_WORK,
    CATEGORY_UPDATE_FAILS,
    JSON_SEGMENT,
    MISSING,
    STATEFUL_TYPES,
    AssemblyDiff,
    Callout,
    PropertyChange,
    ResourceChange,
    StackDiff,
    StackLocation,
    TemplateDiffError,
    format_path,
)
from .normalise import expand_json_documents, normalise_assets, strip_commit_stamps
from .render import GITHUB_COMMENT_LIMIT, render_markdown, render_text
from .values import describe_change, diff_values, shorten

__all__ = [
    "AssemblyDiff", "CATEGORIES", "CATEGORY_DATA_AT_RISK", "CATEGORY_IAM", "CATEGORY_KMS", "CATEGORY_LEFT_RUNNING",
    "CATEGORY_MOVED", "CATEGORY_RETENTION", "CATEGORY_SERVING", "CATEGORY_SECURITY_GROUPS", "CATEGORY_UPDATE_FAILS", "CATEGORY_RUNNING_WORK", "CATEGORY_GOVERNANCE", "CATEGORY_COST", "CATEGORY_IMAGE", "CATEGORY_TUNING",
    "CATEGORY_CONTRACT",
    "Callout", "GITHUB_COMMENT_LIMIT", "JSON_SEGMENT", "MISSING", "PropertyChange",
    "ResourceChange", "STATEFUL_TYPES", "StackDiff", "StackLocation", "TemplateDiffError", "change_impacts", "check_assembly",
    "compare_assemblies", "describe_change", "diff_resource", "diff_stack", "diff_values",
    "expand_json_documents", "format_path", "main", "normalise_assets", "render_markdown", "render_text",
    "resolve_ref", "run", "shorten", "strip_commit_stamps", "synthesize_ref", "synthesize_tree",
]
