#!/usr/bin/env bash
# Backticks in the single-quoted printf formats are Markdown code spans, not command substitution.
# shellcheck disable=SC2016
# The pull-request review report: ONE Markdown file with the template diff against BASE_REF, the
# cdk-nag / cfn-lint summary and the change in the always-on monthly cost floor.
#
#   bash scripts/pr-report.sh BASE_REF OUTPUT.md        e.g. origin/main pr-report.md
#
# Reads the assembly scripts/synth.sh wrote (cdk.out) and runs synth.sh first when there is none or
# when its source stamp does not match the working tree or the config selected now (a stale, foreign,
# other config's or unstamped assembly; see mlops_loop/tools/source_stamp.py), so the report describes
# the tree and the project it names.
# Every section is rendered even when another one fails: a failed sub-command becomes a visible
# "⚠ <section> failed" section with the last lines of its output (a reviewer must never read a
# report with a silently missing part). Exit 0 only when every section succeeded, 1 when any failed
# (the report is still written), 2 on bad arguments.
#
# The sub-commands can be replaced (tests, experiments); each value is split on whitespace:
#   MLOPS_SYNTH_CMD    default: bash scripts/synth.sh
#   MLOPS_STAMP_CMD    default: python -m mlops_loop.tools.source_stamp check --selected-config (exit 0: the
#                      assembly is fresh, and of the config selected now)
#   MLOPS_DIFF_CMD     default: python -m mlops_loop.tools.template_diff
#   MLOPS_SUMMARY_CMD  default: python -m mlops_loop.tools.summary
#   MLOPS_COST_CMD     default: python -m mlops_loop.tools.cost_floor
#   MLOPS_ASSEMBLY     default: cdk.out (relative paths are from the repository root)
#   MLOPS_REPORT_TAIL_LINES  default: 30, the lines of a failed sub-command's output in the report
set -euo pipefail

usage="usage: bash scripts/pr-report.sh BASE_REF OUTPUT.md (e.g. origin/main pr-report.md)"
if [ "$#" -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
  echo "pr-report: expected two arguments, BASE_REF and OUTPUT.md; $usage" >&2
  exit 2
fi
base_ref="$1"
output="$2"
# Resolved before bootstrap.sh changes directory, so a relative OUTPUT.md means the caller's cwd.
case "$output" in /*) ;; *) output="$PWD/$output" ;; esac
if [ ! -d "$(dirname "$output")" ]; then
  echo "pr-report: OUTPUT.md: directory $(dirname "$output") does not exist; create it or choose another path" >&2
  exit 2
fi
tail_lines="${MLOPS_REPORT_TAIL_LINES:-30}"
if ! [[ "$tail_lines" =~ ^[1-9][0-9]*$ ]]; then
  echo "pr-report: MLOPS_REPORT_TAIL_LINES must be a positive integer (got '$tail_lines'); unset it for the default 30" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
. "$ROOT/scripts/bootstrap.sh" full
cd "$ROOT"

read -r -a synth_cmd <<< "${MLOPS_SYNTH_CMD:-bash scripts/synth.sh}"
# --selected-config: a cdk.out of another config (before MLOPS_LOOP_CONFIG was exported) is another project's.
read -r -a stamp_cmd <<< "${MLOPS_STAMP_CMD:-python -m mlops_loop.tools.source_stamp check --selected-config}"
read -r -a diff_cmd <<< "${MLOPS_DIFF_CMD:-python -m mlops_loop.tools.template_diff}"
read -r -a summary_cmd <<< "${MLOPS_SUMMARY_CMD:-python -m mlops_loop.tools.summary}"
read -r -a cost_cmd <<< "${MLOPS_COST_CMD:-python -m mlops_loop.tools.cost_floor}"
assembly="${MLOPS_ASSEMBLY:-cdk.out}"

work="$(mktemp -d "${TMPDIR:-/tmp}/pr-report.XXXXXX")"
trap 'rm -rf "$work"' EXIT
body="$work/body.md"
: > "$body"
base_out="$work/base.out"
failed=()

log() { echo "[pr-report] $*" >&2; }
join_comma() {
  local first="$1"
  shift
  printf '%s' "$first" "${@/#/, }"
}

# run NAME CMD... -> the command's exit status, never aborting this script; its stdout goes to
# $work/NAME.out (the section's content) and its stderr to $work/NAME.err.
run() {
  local name="$1" rc=0
  shift
  "$@" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
  return "$rc"
}

# warn TITLE STATUS NAME COMMAND: the visible replacement of a section whose sub-command failed,
# showing the last lines of what it printed (stdout, then stderr, where the error usually is).
warn() {
  local title="$1" status="$2" name="$3" command="$4"
  failed+=("$title")
  log "⚠ $title failed ($status)"
  {
    printf '## ⚠ %s failed\n\n' "$title"
    printf '`%s`: %s. Last lines of its output:\n\n' "$command" "$status"
    printf '````text\n'
    # A sub-command that never ran has no .out file: show what there is.
    { cat "$work/$name.out" "$work/$name.err" 2> /dev/null || true; } | tail -n "$tail_lines"
    printf '\n````\n\n'
  } >> "$body"
}

# A sub-tool's own headings are shifted so its top level becomes ### (under this report's ## sections).
# Two passes over the file: the first finds the top heading level outside code fences.
nest_headings() {
  awk '
    NR != FNR && FNR == 1 { fence = 0; shift = top ? 3 - top : 0 }
    /^(```|~~~)/ { fence = !fence }
    NR == FNR { if (!fence && /^#+ /) { n = index($0, " ") - 1; if (!top || n < top) top = n }; next }
    !fence && /^#+ / && shift > 0 { for (i = 0; i < shift; i++) $0 = "#" $0 }
    !fence && /^#+ / && shift < 0 { $0 = substr($0, 1 - shift) }
    { print }
  ' "$1" "$1"
}

# Why the assembly cannot be reported as it is (empty when it can): missing, or not synthesized from
# the working tree as it is now (the stamp check's one-line message).
stale=""
if [ ! -f "$assembly/manifest.json" ]; then
  stale="no assembly at $assembly"
elif ! "${stamp_cmd[@]}" "$assembly" > /dev/null 2> "$work/stamp.err"; then
  stale="$(tail -n 1 "$work/stamp.err")"
  stale="${stale:-${stamp_cmd[*]} $assembly failed}"
fi
if [ -n "$stale" ]; then
  log "$stale"
  log "running ${synth_cmd[*]}"
  synth_rc=0
  run synth "${synth_cmd[@]}" || synth_rc=$?
  if [ "$synth_rc" -ne 0 ]; then
    warn "Synth" "exit $synth_rc" synth "${synth_cmd[*]}"
  elif [ ! -f "$assembly/manifest.json" ]; then
    echo "exited 0 but $assembly/manifest.json does not exist" >> "$work/synth.err"
    warn "Synth" "no assembly" synth "${synth_cmd[*]}"
  fi
fi

log "template diff against $base_ref"
if ! git rev-parse --verify --quiet "${base_ref}^{commit}" > /dev/null; then
  echo "base ref '$base_ref' is not a commit in this checkout; fetch it first (actions/checkout with fetch-depth: 0) or pass an existing ref" > "$work/diff.err"
  warn "Template diff" "not run" diff "git rev-parse --verify $base_ref"
else
  diff_rc=0
  run diff "${diff_cmd[@]}" --base "$base_ref" --head-assembly "$assembly" --base-out "$base_out" \
    --format markdown --max-chars 50000 --output "$work/diff.md" || diff_rc=$?
  if [ "$diff_rc" -ne 0 ]; then
    warn "Template diff" "exit $diff_rc" diff "${diff_cmd[*]}"
  elif [ ! -s "$work/diff.md" ]; then
    echo "exited 0 but wrote no report to --output" >> "$work/diff.err"
    warn "Template diff" "empty output" diff "${diff_cmd[*]}"
  else
    { printf '## Template diff against `%s`\n\n' "$base_ref"; nest_headings "$work/diff.md"; printf '\n'; } >> "$body"
  fi
fi

log "cdk-nag and cfn-lint summary"
summary_rc=0
run summary "${summary_cmd[@]}" "$assembly" || summary_rc=$?
if [ "$summary_rc" -ne 0 ]; then
  warn "cdk-nag and cfn-lint summary" "exit $summary_rc" summary "${summary_cmd[*]}"
else
  { printf '## cdk-nag and cfn-lint\n\n````text\n'; cat "$work/summary.out"; printf '\n````\n\n'; } >> "$body"
fi

log "always-on cost floor"
cost_args=("$assembly" --format markdown)
cost_note=""
if [ -f "$base_out/manifest.json" ]; then
  cost_args+=(--base-assembly "$base_out")
else
  # Still report this change's floor; only the comparison needs the base assembly.
  cost_note="_Change against \`$base_ref\` not computed: the base assembly was not synthesized (see the template diff section)._"
fi
cost_rc=0
run cost "${cost_cmd[@]}" "${cost_args[@]}" || cost_rc=$?
if [ "$cost_rc" -ne 0 ]; then
  warn "Cost floor" "exit $cost_rc" cost "${cost_cmd[*]}"
else
  {
    printf '## Always-on monthly cost floor\n\n'
    if [ -n "$cost_note" ]; then printf '%s\n\n' "$cost_note"; fi
    nest_headings "$work/cost.out"
    printf '\n'
  } >> "$body"
fi

head_sha="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
  printf '# Infrastructure review: `%s` → `%s`\n\n' "$base_ref" "$head_sha"
  if [ "${#failed[@]}" -eq 0 ]; then
    printf 'Every section rendered: template diff, cdk-nag and cfn-lint, cost floor.\n\n'
  else
    printf '**⚠ %d section(s) failed:** %s. The other sections are complete.\n\n' "${#failed[@]}" "$(join_comma "${failed[@]}")"
  fi
  cat "$body"
  printf -- '---\n_Generated by `scripts/pr-report.sh` on %s UTC._\n' "$(date -u '+%Y-%m-%d %H:%M')"
} > "$output.tmp"
mv "$output.tmp" "$output"
log "wrote $output"

if [ "${#failed[@]}" -ne 0 ]; then
  echo "pr-report: ${#failed[@]} section(s) failed: ${failed[*]} (details in $output)" >&2
  exit 1
fi
