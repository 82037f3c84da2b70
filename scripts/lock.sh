#!/usr/bin/env bash
# Regenerate requirements.lock (and its main-job subset requirements-synth.lock) from the project venv
# after changing requirements*.txt:
#   .venv/bin/pip install -r requirements-dev.txt && bash scripts/lock.sh
# The lock is the venv's full freeze, checked for consistency first (pip check).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/.venv/bin/python" -m pip check
{
  echo "# Full transitive lock of requirements-dev.txt (pip freeze of the project venv). Regenerate: scripts/lock.sh"
  "$ROOT/.venv/bin/python" -m pip freeze --all --exclude pip --exclude wheel
} > "$ROOT/requirements.lock"
echo "wrote $ROOT/requirements.lock ($(grep -vc '^#' "$ROOT/requirements.lock") packages)"
# The main job's subset (same pins): what scripts/synth.sh installs on a fresh machine.
"$ROOT/.venv/bin/python" "$ROOT/scripts/lock_closure.py" "$ROOT/requirements.txt" "$ROOT/requirements.lock" \
  > "$ROOT/requirements-synth.lock"
echo "wrote $ROOT/requirements-synth.lock ($(grep -vc '^#' "$ROOT/requirements-synth.lock") packages)"
