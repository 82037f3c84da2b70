#!/usr/bin/env bash
# Regenerate requirements.lock (and its main-job subset requirements-synth.lock) from the project venv
# after changing requirements*.txt:
#   .venv/bin/pip install -r requirements-dev.txt && bash scripts/lock.sh
# The lock is the venv's full freeze, checked for consistency first (pip check).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/.venv/bin/python" -m pip check
# Both files are written in a directory beside the locks (under their own names, which the synth lock's
# header quotes) and moved into place together once both are complete: a failed freeze or closure leaves
# the committed locks as they were.
staging="$(mktemp -d "$ROOT/.lock.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
{
  echo "# Full transitive lock of requirements-dev.txt (pip freeze of the project venv). Regenerate: scripts/lock.sh"
  "$ROOT/.venv/bin/python" -m pip freeze --all --exclude pip --exclude wheel
} > "$staging/requirements.lock"
# The main job's subset (same pins): what scripts/synth.sh installs on a fresh machine.
"$ROOT/.venv/bin/python" "$ROOT/scripts/lock_closure.py" "$ROOT/requirements.txt" "$staging/requirements.lock" \
  > "$staging/requirements-synth.lock"
mv "$staging/requirements.lock" "$staging/requirements-synth.lock" "$ROOT/"
echo "wrote $ROOT/requirements.lock ($(grep -vc '^#' "$ROOT/requirements.lock") packages)"
echo "wrote $ROOT/requirements-synth.lock ($(grep -vc '^#' "$ROOT/requirements-synth.lock") packages)"
