#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh machine:
#   - .venv: Python venv with the exact versions of requirements.lock (everything: tests, local jobs), or,
#     sourced as ". scripts/bootstrap.sh synth" (the main job), of its subset requirements-synth.lock (no
#     Spark, XGBoost, moto or test tools). Each lock is installed by uv (pinned in it) in one run
#     without re-resolving (it is a full, checked closure, see scripts/lock.sh); a later full set-up adds
#     only what the subset lacks, and a changed lock is installed again.
#   - node_modules: Node 22 and the pinned AWS CDK CLI from package.json / package-lock.json
# Source it (". scripts/bootstrap.sh") to also get PATH with Node 22 and the venv first. Sourcing is
# safe in an interactive shell: the set-up runs in a bash process of its own with its own strict options,
# so the caller's shell options and working directory stay as they were, and a failed set-up returns 1
# instead of closing the shell.

# shellcheck disable=SC2329,SC2030  # run by its own bash (declare -f below), so its variables stay there
_mlops_loop_setup() (
  set -euo pipefail
  cd "$1"
  profile="$2"
  # The byte-compiling job started below (its pid): waited for when the set-up succeeds, stopped when it
  # fails (a failed npm ci, Ctrl-C), so nothing is left running and writing to the caller's output.
  compiling=""
  trap 'status=$?; if [ -n "$compiling" ]; then
          if [ "$status" -ne 0 ]; then kill "$compiling" 2> /dev/null || true; fi
          wait "$compiling" 2> /dev/null || true
        fi' EXIT

  PYTHON="${PYTHON:-python3}"
  if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)'; then
    echo "mlops-loop needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi

  full_hash="$(sha256sum requirements.lock | cut -d' ' -f1)"
  if [ "$profile" = synth ]; then lock=requirements-synth.lock; else lock=requirements.lock; fi
  want="$(sha256sum "$lock" | cut -d' ' -f1)"
  pkg_hash="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
  venv_current() {
    local have
    have="$(cat .venv/.lock-hash 2>/dev/null || true)"
    # The full lock satisfies the synth set-up too.
    [ -x .venv/bin/python ] && { [ "$have" = "$want" ] || [ "$have" = "$full_hash" ]; }
  }
  node_current() {
    [ -x node_modules/.bin/node ] && [ -x node_modules/.bin/cdk ] \
      && [ "$(cat node_modules/.lock-hash 2>/dev/null)" = "$pkg_hash" ]
  }
  # Set-ups of one checkout that install take turns where flock exists (test.sh and synth.sh started together
  # on a fresh clone): one npm ci would delete node_modules under the other, and both would record their
  # install as done. The checks below run once the lock is held, so the second finds the first one's install.
  # Nothing to install, no lock (sourcing stays instant); a checkout whose .cache cannot be written goes on
  # without it.
  if ! { venv_current && node_current; } && command -v flock > /dev/null && mkdir -p .cache 2> /dev/null \
      && true 2> /dev/null >> .cache/bootstrap.lock; then
    exec 9>> .cache/bootstrap.lock
    flock -n 9 || { echo "[bootstrap] waiting for another set-up of this checkout to finish" >&2; flock 9; }
  fi

  if ! venv_current; then
    if [ ! -x .venv/bin/python ]; then
      echo "[bootstrap] creating .venv"
      "$PYTHON" -m venv .venv
    fi
    echo "[bootstrap] installing $lock into .venv"
    # uv (pinned in the lock) installs the lock's wheels in parallel: the full lock in ~20 s where pip
    # took 70-150 s. --no-deps: the lock is the whole closure, pinned and checked (pip check) when it
    # was written. Like pip --no-compile, uv leaves byte-compiling to the first import of each module
    # (compiling all 1-2 GB up front took longer than installing).
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "$(grep -E '^uv==' "$lock")"
    # torch's CPU build (full lock only) is not on PyPI: uv takes it from the machine's wheel directory
    # (MLOPS_LOOP_WHEELS, default /opt/wheels, where pip finds it too), else from PyTorch's CPU index - torch
    # alone, in a call of its own: with that index beside the default one for every package, a package of the
    # same name and version published there could replace the one the lock was checked with (the lock pins
    # versions, not hashes).
    wheels="${MLOPS_LOOP_WHEELS:-/opt/wheels}"
    torch_from=()
    lock_rest=""
    if grep -q '^torch==' "$lock"; then
      if compgen -G "$wheels/torch-$(grep -E '^torch==' "$lock" | cut -d= -f3)-*.whl" > /dev/null; then
        torch_from=(--find-links "$wheels")
      else
        grep -E '^torch==' "$lock" > .venv/.lock-torch
        .venv/bin/uv pip install --quiet --no-deps --python .venv/bin/python \
          --index-url https://download.pytorch.org/whl/cpu -r .venv/.lock-torch
        grep -vE '^torch==' "$lock" > .venv/.lock-rest
        lock_rest=.venv/.lock-rest
      fi
    fi
    .venv/bin/uv pip install --quiet --no-deps --python .venv/bin/python ${torch_from[@]+"${torch_from[@]}"} \
      -r "${lock_rest:-$lock}"
    echo "$want" > .venv/.lock-hash
    if [ "$profile" = full ]; then
      # What the tests import, compiled once and split over the cores, instead of by every test worker
      # at the same moment (scripts/warm_bytecode.py). Bytecode is written whatever the caller's
      # PYTHONDONTWRITEBYTECODE (only for this step: the caller's shell keeps its setting); a failure
      # only costs the speed-up. It runs while npm installs Node (mostly waiting on the disk), without the
      # lock's descriptor, and the set-up waits for it below.
      echo "[bootstrap] byte-compiling what the tests import"
      env -u PYTHONDONTWRITEBYTECODE .venv/bin/python scripts/warm_bytecode.py 9>&- &
      compiling=$!
    fi
  fi

  if ! node_current; then
    echo "[bootstrap] installing Node 22 and the AWS CDK CLI (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$pkg_hash" > node_modules/.lock-hash
  fi
  if [ -n "$compiling" ]; then
    status=0
    wait "$compiling" || status=$?
    compiling=""
    if [ "$status" -ne 0 ]; then
      echo "[bootstrap] byte-compiling failed (exit $status, its output is above); the tests compile what they import" >&2
    fi
  fi
)

_mlops_loop_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# "synth" selects the main job's subset; anything else (also a caller's own positional parameters,
# which a sourced script sees when given none) means everything.
# The set-up runs in a bash process of its own: called where its status is tested (the "if" below), a
# function runs with errexit ignored however it sets it, so a failed install would go on and record its
# lock as installed. PYTHON and MLOPS_LOOP_WHEELS reach it even when the caller did not export them.
# shellcheck disable=SC2031  # the caller's own PYTHON, handed to the set-up
if ! PYTHON="${PYTHON:-}" MLOPS_LOOP_WHEELS="${MLOPS_LOOP_WHEELS:-}" bash -c "$(declare -f _mlops_loop_setup)"'
    _mlops_loop_setup "$@"' _mlops_loop_setup "$_mlops_loop_root" "$([ "${1:-}" = synth ] && echo synth || echo full)"; then
  echo "[bootstrap] set-up failed (see above)" >&2
  unset -f _mlops_loop_setup
  unset _mlops_loop_root
  # 'return' when sourced; when executed, the non-zero exit status.
  # shellcheck disable=SC2317  # reached when the script is executed rather than sourced
  return 1 2>/dev/null || exit 1
fi
unset -f _mlops_loop_setup

# Node 22 first on PATH: jsii (aws-cdk-lib) and the CDK CLI run on it, not on the system Node.
export PATH="$_mlops_loop_root/node_modules/.bin:$_mlops_loop_root/.venv/bin:$PATH"
unset _mlops_loop_root
# The venv's modules are byte-compiled once, at their first import, and reused by every later process
# (uv installs with no .pyc, see above). A machine-wide PYTHONDONTWRITEBYTECODE would instead have every
# process compile every module it imports again: a test worker importing the CDK, the SageMaker SDK,
# Spark and torch spends 26 s on it without .pyc files, 10 s with them (and pytest re-rewrites every
# test module in each worker). .gitignore keeps __pycache__ out of commits. Only in scripts (the README's
# commands and the other scripts/ source this file non-interactively): an interactive shell that sources
# it keeps its own setting.
case $- in
  *i*) ;;
  *) unset PYTHONDONTWRITEBYTECODE ;;
esac
# Synth is hermetic: no notices, telemetry or version checks over the network.
export CDK_DISABLE_VERSION_CHECK=1
export CDK_DISABLE_CLI_TELEMETRY=true
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
