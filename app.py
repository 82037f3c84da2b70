#!/usr/bin/env python3
"""CDK entry point: read the app's config, validate it once, synthesize every environment (or those named).

The config file is the ``mlops-loop:config`` context when given (``-c mlops-loop:config=path``), else the file
the ``MLOPS_LOOP_CONFIG`` environment variable names (the way to run a second project: the tools' default
``--config`` reads it too), else ``config/mlops-loop.yaml`` (``mlops_loop.config.location.resolve_config``).
``-c mlops-loop:environments=dev`` (comma-separated) synthesizes only those environments, for
a quicker look at one; the tools that need the whole app refuse such an assembly (its stamp says so).
The config is read and checked before the CDK is imported, from the context read as the App will hold it
(``mlops_loop.cdk_json.app_context``): a config with a mistake fails in half a second, not after the CDK's import.
Synth makes no AWS call: accounts and regions come from the config only. The assembly gets
a source stamp (``mlops-loop-source.json``: commit and synth inputs, see
``mlops_loop.tools.source_stamp``) so the review tools can tell whether it still matches the tree.

The CDK CLI runs it as ``python -O app.py`` (cdk.json): optimized mode skips the Python-side type checks
of the CDK's generated bindings (typeguard on every CDK call, about 6 % of a warm synth); the jsii kernel
still checks every value it receives. The tests build the same constructs with those checks on and find
the same templates (tests/infra/test_hermetic.py), and our code that synth runs holds no ``assert``
(tests/test_boundaries.py), so the mode changes nothing else in it. A synth that succeeds ends without the
interpreter's teardown, once its exit handlers have run (``mlops_loop.interpreter.exit_without_teardown``).
"""

import dataclasses
import datetime
import sys
from pathlib import Path
from typing import Any, Optional, Tuple

from mlops_loop.interpreter import collect_garbage_less_often, exit_without_teardown
from mlops_loop.training import sdk_helper

if __name__ == "__main__":
    collect_garbage_less_often()
    # Before the CDK is imported (a second): on an empty SDK cache the helper imports the SDK meanwhile.
    sdk_helper.start_for_app()

# The CDK-free part: which config, and the config itself.
from mlops_loop import cdk_json  # noqa: E402
from mlops_loop.config import AppConfig, ConfigError, load_config  # noqa: E402
from mlops_loop.config.location import ConfigLocation, resolve_config  # noqa: E402
from mlops_loop.tools import source_stamp  # noqa: E402


def read_config(context: Any) -> Tuple[ConfigLocation, source_stamp.SourceStamp, AppConfig]:
    """The config file the ``mlops-loop:config`` context value ``context`` (None: not given) resolves to, saying where
    it came from when not the default way, the source stamp taken before it is read, and the config; a config that
    cannot be read exits 2 with its one message."""
    location = resolve_config(context)
    config_path = location.path
    # Which project a deploy acts on is the config's: said whenever the variable chose it or lost to a context.
    if location.chosen_by == "environment":
        print(f"mlops-loop: config {config_path} (MLOPS_LOOP_CONFIG)", file=sys.stderr)
    if location.warning():
        print(f"mlops-loop: warning: {location.warning()}", file=sys.stderr)
    # Taken before the config is read and the stacks are built (the slow part), so an edit made during
    # synth leaves the assembly stale rather than mislabelled.
    source = source_stamp.fingerprint(source_stamp.REPO_ROOT, config=Path(config_path).resolve())
    try:
        config = load_config(config_path)
    except ConfigError as error:
        # A clear message and a non-zero exit, not a stack trace.
        print(f"mlops-loop: {error}", file=sys.stderr)
        sys.exit(2)
    return location, source, config


def read_config_without_the_cdk() -> Optional[Tuple[Any, Tuple[ConfigLocation, source_stamp.SourceStamp, AppConfig]]]:
    """The ``mlops-loop:config`` value of the context the App will hold (``cdk_json.app_context``) and
    :func:`read_config`'s answer for it; None when what the CLI handed over cannot be read that way, which the App
    then reports as it always has."""
    try:
        context = cdk_json.app_context().get(source_stamp.CONFIG_CONTEXT_KEY)
    except (OSError, ValueError):
        return None
    return context, read_config(context)


if __name__ == "__main__":
    # Before the CDK is imported (about 2 s of CPU): a config that cannot be read fails at once, with the same lines.
    EARLY = read_config_without_the_cdk()

from mlops_loop.app_builder import REPO_ROOT, build_app, new_app, source_version  # noqa: E402
from mlops_loop.tools import stack_quotas  # noqa: E402
from pipeline_code.core import images  # noqa: E402
from pipeline_code.core.contract import BOOTSTRAP_QUALIFIER_CONTEXT, cdk_qualifier_problem  # noqa: E402


def main(early: Optional[Tuple[Any, Tuple[ConfigLocation, source_stamp.SourceStamp, AppConfig]]] = None) -> None:
    """Synthesize the app. ``early``: :func:`read_config_without_the_cdk`'s answer, else the config is read here, from
    the App's context."""
    app = new_app()
    context = app.node.try_get_context(source_stamp.CONFIG_CONTEXT_KEY)
    if early is None:
        location, source, config = read_config(context)
    elif early[0] != context:  # cdk_json.app_context no longer reads the context as the App does: a bug
        raise RuntimeError(f"context {source_stamp.CONFIG_CONTEXT_KEY!r} is {context!r} in the App, {early[0]!r} as "
                           "read before the CDK (mlops_loop.cdk_json.app_context)")
    else:
        location, source, config = early[1]
    config_path = location.path
    # The bootstrap qualifier names the roles the stacks deploy as, and the recovery commands the notices give.
    qualifier = app.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT)
    problem = None if qualifier is None else cdk_qualifier_problem(qualifier)
    if problem:
        print(f"mlops-loop: {problem}", file=sys.stderr)
        sys.exit(2)
    environments = _selected_environments(app.node.try_get_context(source_stamp.ENVIRONMENTS_CONTEXT_KEY), config)
    # The config read, as well as the tree: a version built from another config or untracked code is dirty; one git
    # cannot read is unknown. Either is said, not refused (docs/deploying.md: the code version every model version records).
    version = source_version(REPO_ROOT, config=Path(config_path))
    unpinned = version.warning()
    # The XGBoost image's end of patch (near or past), by today's date in UTC: said, never refused.
    image_eop = images.end_of_patch_warning(datetime.datetime.now(datetime.timezone.utc).date())
    for warning in [*config.warnings(), *([unpinned] if unpinned else []), *([image_eop] if image_eop else [])]:
        print(f"mlops-loop: warning: {warning}", file=sys.stderr)
    # The commands the alarms and notices print name the config when it is not the default (the tools' default).
    build_app(app, config, environments=environments, code_version=version.version, cli_config=location.cli_config)
    sdk_helper.close()  # build_app has what it asked for: the helper exits while the templates are written
    # The stamp records a selection, so the tools that read cdk.out as the whole app refuse it.
    stamp = dataclasses.replace(source, environments=tuple(environments)) if environments is not None else source
    models_of = lambda env: len(config.environments[env].models) if env in config.environments else 0  # noqa: E731
    try:
        assembly = app.synth()
    except RuntimeError as error:
        # The CDK refuses a stack of over 500 resources while writing it: said as one line with what to do.
        refused = stack_quotas.too_many_resources(error, models_of)
        if refused is None:
            raise
        print(f"mlops-loop: {refused}", file=sys.stderr)
        sys.exit(2)
    source_stamp.write_stamp(assembly.directory, stamp)
    # A template over CloudFormation's size or count quotas synthesizes, then fails the deploy: refused here.
    problems = stack_quotas.quota_problems(assembly.directory, models_of)
    for problem in problems:
        print(f"mlops-loop: {problem}", file=sys.stderr)
    if problems:
        sys.exit(2)


def _selected_environments(value: object, config: AppConfig) -> Optional[list[str]]:
    """The environments the ``mlops-loop:environments`` context names ("dev,prod" or a list), in the config's
    order; None (all of them) when it is not given or names every one.

    A name the config does not define, an empty name or an empty list exits 2 with one line saying which
    names the config has.
    """
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    names = [str(item).strip() for item in items]
    unknown = [n for n in names if n and n not in config.environments]
    if unknown or not names or not all(names):
        problem = f"unknown environment(s) {', '.join(unknown)}" if unknown else "an empty environment name" if names else "no environment"
        print(f"mlops-loop: context '{source_stamp.ENVIRONMENTS_CONTEXT_KEY}': {value!r} names {problem}; give a "
              f"comma-separated list of {', '.join(config.environments)} (or leave it out for all)", file=sys.stderr)
        sys.exit(2)
    selected = [name for name in config.environments if name in names]
    return None if len(selected) == len(config.environments) else selected

if __name__ == "__main__":
    main(EARLY)
    exit_without_teardown()
