#!/usr/bin/env bash
# The main job: synthesize every environment into cdk.out with the CDK CLI (cdk-nag AwsSolutions and
# NIST 800-53 R5 run inside synth), lint every template with cfn-lint, and print a summary and the
# always-on monthly cost floor per environment.
# Sets up .venv (the main job's packages only) and Node 22 first when missing. Needs no AWS credentials and no network.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
. "$ROOT/scripts/bootstrap.sh" synth
cd "$ROOT"
echo "[synth] cdk synth (all environments)"
# Into a directory of its own, which replaces cdk.out once synth succeeds: a config error keeps the last good
# assembly for the tools that read it (and none of a removed stack's files survive a success).
rm -rf cdk.next.out
cdk synth --quiet --no-notices --no-version-reporting --output cdk.next.out "$@" || { rm -rf cdk.next.out; exit 1; }
rm -rf cdk.out
mv cdk.next.out cdk.out
echo "[synth] cfn-lint"
python -m mlops_loop.tools.summary cdk.out
echo "[synth] always-on cost floor"
# The assembly was written a moment ago from this tree: --allow-stale only turns a refusal into a
# warning where the source cannot be identified (no git) or the tree was edited during synth.
python -m mlops_loop.tools.cost_floor cdk.out --allow-stale
