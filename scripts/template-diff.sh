#!/usr/bin/env bash
# Offline template diff for review: synthesize a base git ref (temporary git worktree) and the working
# tree, and print per environment and stack what is added / removed / replaced / modified, with IAM,
# security-group, KMS, data-retention and data-at-risk call-outs first. Needs no AWS credentials.
#   scripts/template-diff.sh --base origin/main [--format markdown] [--output diff.md] [--env prod]
# Sets up .venv and Node 22 first when missing. Exit 0: diff produced; 2: bad ref / base fails to synth.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
. "$ROOT/scripts/bootstrap.sh" synth
cd "$ROOT"
exec python -m mlops_loop.tools.template_diff "$@"
