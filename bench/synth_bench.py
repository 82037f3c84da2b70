"""Benchmark of the inner loop: synth against a trivial CDK app, the test suite, and a fresh clone's set-up.

Usage (after scripts/bootstrap.sh; each part is optional, the synth part always runs):

    python bench/synth_bench.py [--repeats 5] [--with-tests] [--fresh-clone]

* **synth**: the app as the CDK CLI runs it (cdk.json's ``app`` command: ``python -O app.py``; every
  environment, nag packs on) in a fresh process, cold (an empty SDK cache, as on a fresh clone) and warm
  (the cache filled), against a one-stack app with one bucket synthesized two ways: with CDK's defaults
  (``python app.py``, built-in template validator on, as any new CDK app) and with this app's settings
  (``app_builder.new_app``: cdk.json's context and interpreter flags, validator off). Medians of
  ``--repeats``; the runs alternate so machine noise hits all alike.
* **tests** (``--with-tests``): the README's test command once (``bash scripts/test.sh``), its wall time
  and the 15 slowest tests it prints.
* **fresh clone** (``--fresh-clone``): ``git clone`` of this checkout's HEAD, then the README's two commands
  in order, each timed: ``bash scripts/synth.sh`` (set-up + main job), the main job again (set-up done, the
  SDK's answers and cfn-lint's findings cached) and ``bash scripts/test.sh`` (reuses the set-up); then a
  second clone running only ``bash .ci/run``, which is what CI does. pip and npm keep their machine-wide
  download caches, as on any contributor's machine after the first install.

Each timed command also reports its CPU seconds (user + system of every process it started and waited for:
pytest's workers and their Spark JVMs, npm, pip), which a busy machine does not inflate the way it inflates
wall time. Writes bench/results/synth.json, appends the run (commit, date, results) to
bench/results/synth_history.jsonl so before and after stay side by side, and prints a table. Targets are not asserted here or in tests: they are
tracked over time from these numbers (issue #16: synth <= 2x the trivial app warm and <= 4x cold, the
suite <= 90 s, set-up + main job <= 120 s, CI <= 4 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the app lives at the root
from mlops_loop.cdk_json import app_interpreter  # noqa: E402


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far, theirs included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, str, float]:
    """Wall seconds of ``cmd`` (which must succeed), its combined output and its CPU seconds."""
    cpu, start = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return elapsed, proc.stdout, children_cpu() - cpu


def synth_times(repeats: int) -> dict[str, float]:
    runs: dict[str, list[float]] = {"app_cold": [], "app_warm": [], "trivial_cdk_defaults": [], "trivial_app_settings": []}
    warm_cache = Path(tempfile.mkdtemp(prefix="bench-sdk-cache-"))
    try:
        with tempfile.TemporaryDirectory() as outdir:  # fill the warm cache once, untimed
            timed([*app_interpreter(), "app.py"], {**os.environ, "CDK_OUTDIR": outdir, "MLOPS_LOOP_CACHE_DIR": str(warm_cache)})
        for _ in range(repeats):
            for name in runs:
                with tempfile.TemporaryDirectory() as outdir, tempfile.TemporaryDirectory() as cold_cache:
                    env = {**os.environ, "CDK_OUTDIR": outdir}
                    command = [*app_interpreter(), "app.py"]
                    if name == "app_cold":
                        env["MLOPS_LOOP_CACHE_DIR"] = cold_cache
                    elif name == "app_warm":
                        env["MLOPS_LOOP_CACHE_DIR"] = str(warm_cache)
                    elif name == "trivial_cdk_defaults":
                        command = [sys.executable, "bench/trivial_app.py"]
                    else:
                        command = [*app_interpreter(), "bench/trivial_app.py", "--app-settings"]
                    runs[name].append(timed(command, env)[0])
    finally:
        shutil.rmtree(warm_cache, ignore_errors=True)
    medians = {f"{name}_s": round(statistics.median(times), 2) for name, times in runs.items()}
    for floor in ("trivial_cdk_defaults", "trivial_app_settings"):
        for side in ("cold", "warm"):
            medians[f"ratio_{side}_to_{floor}"] = round(medians[f"app_{side}_s"] / medians[f"{floor}_s"], 2)
    return medians


def slowest(output: str) -> list[str]:
    """The durations table pytest prints (``--durations``), one line per test."""
    return re.findall(r"^\d+\.\d+s (?:call|setup|teardown) +\S+$", output, flags=re.M)


def test_summary(output: str) -> str:
    """pytest's last summary line (``8276 passed, 1 skipped in 303.2s``), or ``""``."""
    summary = re.findall(r"^(?:=+ )?(\d+ passed[^=\n]*?)(?: =+)?$", output, flags=re.M)
    return summary[-1] if summary else ""


def test_suite() -> dict[str, object]:
    seconds, output, cpu = timed(["bash", "scripts/test.sh", "-q", "-p", "no:cacheprovider"], dict(os.environ))
    return {"test_suite_s": round(seconds, 1), "test_suite_cpu_s": round(cpu, 1),
            "test_summary": test_summary(output), "slowest": slowest(output)}


def fresh_clone() -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
    result: dict[str, object] = {}

    def record(key: str, cmd: list[str], run_env: dict[str, str], cwd: Path) -> None:
        seconds, output, cpu = timed(cmd, run_env, cwd)
        result[f"{key}_s"], result[f"{key}_cpu_s"] = round(seconds, 1), round(cpu, 1)
        if test_summary(output):
            result[f"{key}_summary"] = test_summary(output)

    with tempfile.TemporaryDirectory(prefix="bench-clone-") as parent:
        first, second = Path(parent) / "first", Path(parent) / "second"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(first)], check=True)
        record("clone_synth_sh", ["bash", "scripts/synth.sh"], env, first)
        record("clone_synth_sh_again", ["bash", "scripts/synth.sh"], env, first)
        record("clone_then_test_sh", ["bash", "scripts/test.sh", "-q"], env, first)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(second)], check=True)
        record("clone_ci_run", ["bash", ".ci/run"], {**env, "CI": "true"}, second)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--with-tests", action="store_true", help="also time the README's test command once")
    parser.add_argument("--fresh-clone", action="store_true", help="also time both README commands on fresh clones")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    result: dict[str, object] = {"repeats": args.repeats, **synth_times(args.repeats)}
    if args.with_tests:
        result.update(test_suite())
    if args.fresh_clone:
        result.update(fresh_clone())

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.json").write_text(json.dumps(result, indent=2))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with (out / "synth_history.jsonl").open("a") as history:
        history.write(json.dumps({"commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "cores": os.cpu_count(), **result}) + "\n")
    print(f"synth, whole app, cold SDK cache:          {result['app_cold_s']:6.2f} s (median of {args.repeats})")
    print(f"synth, whole app, warm SDK cache:          {result['app_warm_s']:6.2f} s")
    print(f"synth, trivial app, CDK defaults:          {result['trivial_cdk_defaults_s']:6.2f} s")
    print(f"synth, trivial app, this app's settings:   {result['trivial_app_settings_s']:6.2f} s")
    for floor in ("trivial_cdk_defaults", "trivial_app_settings"):
        print(f"ratio to {floor:22s} cold {result[f'ratio_cold_to_{floor}']:.2f}x, warm {result[f'ratio_warm_to_{floor}']:.2f}x")
    if "test_suite_s" in result:
        print(f"test suite (bash scripts/test.sh):         {result['test_suite_s']:6.1f} s, {result['test_suite_cpu_s']:.0f} CPU-s"
              f"  {result['test_summary']}")
        for line in result["slowest"]:
            print(f"    {line}")
    for key, label in (("clone_synth_sh_s", "fresh clone: bash scripts/synth.sh"),
                       ("clone_synth_sh_again_s", "then again (caches warm)"),
                       ("clone_then_test_sh_s", "then: bash scripts/test.sh"),
                       ("clone_ci_run_s", "fresh clone: bash .ci/run (CI)")):
        if key in result:
            print(f"{label + ':':42s} {result[key]:6.1f} s, {result[key[:-2] + '_cpu_s']:.0f} CPU-s"
                  f"  {result.get(key[:-2] + '_summary', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
