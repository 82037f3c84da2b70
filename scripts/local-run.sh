#!/usr/bin/env bash
# The embedded default: the whole loop on this machine, no AWS account. Generates data, runs the
# Glue ETL on local Spark, computes features, prepares, trains, evaluates against the champion in
# a local registry, applies the gate and registers. Run it twice: the second run is scored against
# the first run's model. Extra arguments go to mlops_cli.local.run_loop (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
. "$ROOT/scripts/bootstrap.sh" full
cd "$ROOT"
exec python -m mlops_cli.local.run_loop --workdir .local-run "$@"
