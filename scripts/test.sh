#!/usr/bin/env bash
# The whole test suite (infra synth + assertions + snapshots + cfn-lint + cdk-nag, and the job code
# on real local Spark/pandas). Sets up .venv and Node 22 first when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
. "$ROOT/scripts/bootstrap.sh" full
cd "$ROOT"
exec python -m pytest "$@"
