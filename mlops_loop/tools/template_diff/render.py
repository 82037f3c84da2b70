"""Rendering a diff as plain text or as a GitHub comment that fits the comment size limit."""

from __future__ import annotations

from .model import WARNING_CATEGORIES, AssemblyDiff, ResourceChange
from .values import describe_change


GITHUB_COMMENT_LIMIT = 65_536

_KIND_MARK = {"added": "+", "removed": "-", "modified": "~", "replaced": "!"}
_COUNT_COLUMNS = ("stacks added", "stacks removed", "added", "removed", "modified", "replaced", "call-outs")
# Shown only in a diff where a stack moved (so the table of every other diff stays as it was).
_MOVED_COLUMN = "stacks moved"


def _resource_lines(rc: ResourceChange, *, max_changes: int = 40) -> list[str]:
    lines = []
    for reason in rc.replacement_reasons:
        lines.append(f"replacement: {reason}")
    for note in rc.notes:
        lines.append(f"note: {note}")
    for c in rc.changes[:max_changes]:
        lines.append(f"{c.dotted}: {describe_change(c)}")
    if len(rc.changes) > max_changes:
        lines.append(f"... and {len(rc.changes) - max_changes} more changed values")
    return lines


def _code_lines(diff: AssemblyDiff) -> list[str]:
    """What changed in the code behind the "asset changed" resources: commit subjects and uncommitted files; []
    when it was not looked up."""
    code = diff.code_changes
    if code is None:
        return []
    lines = [f"Code behind the 'asset changed' resources ({code.command}, newest first):"]
    lines += [f"  - {subject}" for subject in code.subjects]
    if code.more:
        lines.append(f"  ... and {code.more} more commits")
    if code.uncommitted:
        lines.append(f"  + uncommitted changes to {code.uncommitted} file(s) under pipeline_code/ in the working tree")
    if not code.subjects and not code.uncommitted:
        lines.append("  no commit touched pipeline_code/: the assets changed with what packages them (dependencies, "
                     "the synthesized pipeline or job definitions)")
    return lines


def render_text(diff: AssemblyDiff, *, title: str) -> str:
    """The diff for a terminal: what changed behind asset hashes, then call-outs first, then per stack every changed
    resource and value."""
    out = [title, ""]
    code = _code_lines(diff)
    if code:
        out += code + [""]
    for stage in diff.environments:
        counts = diff.counts(stage)
        changed = [s for s in diff.for_stage(stage) if s.status != "unchanged"]
        out.append(f"== {stage} ==")
        if not changed:
            out += ["  no changes", ""]
            continue
        out.append("  " + ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("added", "removed", "modified", "replaced")))
        callouts = diff.callouts_for(stage)
        if callouts:
            out.append("  Call-outs:")
            for c in callouts:
                out.append(f"    [{c.category}] {c.stack}/{c.logical_id} ({c.resource_type}): {c.message}")
        for sd in changed:
            out.append(f"  Stack {sd.stack_name} ({sd.artifact_id}): {sd.status_label}")
            for rc in sd.resources:
                out.append(f"    {_KIND_MARK[rc.kind]} {rc.logical_id} ({rc.resource_type}) {rc.label}")
                out += [f"        {line}" for line in _resource_lines(rc)]
            for c in sd.stack_changes:
                out.append(f"    ~ {c.dotted}: {describe_change(c)}")
        out.append("")
    out.append(_NORMALISATION_NOTE)
    return "\n".join(out) + "\n"


_NORMALISATION_NOTE = (
    "Asset hashes and code digests are compared but shown as 'asset changed'; git commit stamps "
    "(code_version) always differ between refs and are ignored; Metadata and DependsOn are not compared."
)


def _md(text: str) -> str:
    """Text safe inside a markdown code span."""
    return text.replace("`", "'").replace("\n", " ")


def _html(text: str) -> str:
    """Plain markdown text with ``<json>`` and friends kept visible (GitHub drops unknown tags)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render_markdown(diff: AssemblyDiff, *, title: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """A pull-request comment: summary table, call-outs per environment, details in <details> blocks.

    Stays under ``limit`` characters (GitHub's comment cap by default): details are cut first, then
    call-outs, each with a note saying how much was left out.
    """
    head = [f"## {title}", ""]
    if diff.is_empty:
        head += ["**No changes** in " + ", ".join(f"`{e}`" for e in diff.environments) + ".", "", f"<sub>{_NORMALISATION_NOTE}</sub>"]
        return "\n".join(head) + "\n"
    columns = _COUNT_COLUMNS
    if any(s.status == "moved" for s in diff.stacks):
        columns = columns[:2] + (_MOVED_COLUMN,) + columns[2:]
    head += ["| Environment | " + " | ".join(c.capitalize() for c in columns) + " |"]
    head += ["|---" * (len(columns) + 1) + "|"]
    for stage in diff.environments:
        counts = diff.counts(stage)
        head.append(f"| `{stage}` | " + " | ".join(str(counts[c]) for c in columns) + " |")
    head.append("")
    code = _code_lines(diff)
    if code:
        head += [f"**{_html(code[0].removesuffix(':'))}**", ""]
        head += [f"- {_html(line.strip().removeprefix('- '))}" for line in code[1:]]
        head.append("")
    footer = f"\n<sub>{_NORMALISATION_NOTE}</sub>\n"
    reserve = 600  # room for truncation notes and closing tags
    budget = limit - len(footer) - reserve
    parts: list[str] = ["\n".join(head)]
    used = len(parts[0])

    def fits(text: str) -> bool:
        return used + len(text) + 1 <= budget

    # Call-outs of every environment come before any details.
    sections: dict[str, list[str]] = {}
    omitted_callouts = 0
    for stage in diff.environments:
        lines = [f"### `{stage}`", ""]
        callouts = diff.callouts_for(stage)
        if not [s for s in diff.for_stage(stage) if s.status != "unchanged"]:
            lines.append("No changes.")
        elif callouts:
            lines.append("**Call-outs**")
            lines.append("")
            for c in callouts:
                mark = ":warning: " if c.category in WARNING_CATEGORIES else ""
                line = f"- {mark}**{c.category}** `{c.stack}/{c.logical_id}` ({c.resource_type}): {_html(c.message)}"
                if fits("\n".join(lines) + line) and used + len(line) < budget * 0.6:
                    lines.append(line)
                    used += len(line) + 1
                else:
                    omitted_callouts += 1
        else:
            lines.append("No IAM, security-group, KMS or data-retention changes.")
        lines.append("")
        sections[stage] = lines
        used += len(lines[0]) + 4
    omitted_details = 0
    for stage in diff.environments:
        lines = sections[stage]
        changed = [s for s in diff.for_stage(stage) if s.status != "unchanged"]
        if changed:
            n = sum(len(s.resources) for s in changed)
            opener = [f"<details><summary>{stage}: {n} changed resource(s) in {len(changed)} stack(s)</summary>", ""]
            lines += opener
            used += sum(len(x) + 1 for x in opener)
            for sd in changed:
                block = [f"**{sd.stack_name}** (`{sd.artifact_id}`): {_html(sd.status_label)}", ""]
                entries = []
                for rc in sd.resources:
                    entry = [f"- `{_KIND_MARK[rc.kind]}` `{rc.logical_id}` {rc.resource_type}: **{rc.label}**"]
                    entry += [f"  - `{_md(line)}`" for line in _resource_lines(rc, max_changes=25)]
                    entries.append("\n".join(entry))
                entries += [f"- `~` `{_md(c.dotted)}`: `{_md(describe_change(c))}`" for c in sd.stack_changes]
                header = "\n".join(block)
                if not fits(header):
                    omitted_details += len(entries)
                    continue
                lines.append(header)
                used += len(header) + 1
                for entry in entries:
                    if fits(entry):
                        lines.append(entry)
                        used += len(entry) + 1
                    else:
                        omitted_details += 1
                lines.append("")
                used += 1
            lines += ["</details>", ""]
            used += 12
        parts.append("\n".join(lines))
    notes = []
    if omitted_callouts:
        notes.append(f"**{omitted_callouts} call-out(s) left out** to stay under GitHub's comment limit.")
    if omitted_details:
        notes.append(
            f"**{omitted_details} detail entr{'y' if omitted_details == 1 else 'ies'} left out** to stay under "
            "GitHub's comment limit; run `scripts/template-diff.sh --base <ref>` for the full diff."
        )
    text = "\n".join(parts) + ("\n> " + "\n> ".join(notes) + "\n" if notes else "") + footer
    if len(text) > limit:  # a safety net; the budget above should never let this happen
        cut = "\n\n> Output truncated to GitHub's comment limit.\n"
        text = text[: limit - len(cut)] + cut
    return text
