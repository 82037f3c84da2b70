"""Run the SageMaker Python SDK v3 offline: everything it needs to *describe* a pipeline, nothing more.

Building a pipeline definition with the SDK must never talk to AWS: synth runs without an
account, without credentials and (in CI) without a network. The SDK does not make that easy,
so every workaround lives here, in one place:

* ``AWS_DEFAULT_REGION`` must be set *before* ``sagemaker`` is imported: importing
  ``sagemaker.mlops.workflow`` builds a boto3 client at class-definition time
  (``sagemaker.ai_registry.air_hub``). The SDK is therefore only imported inside
  :func:`offline_sdk`, never at module level.
* Static dummy credentials and ``AWS_EC2_METADATA_DISABLED=true``: creating a botocore
  client resolves the credential chain, which would otherwise read ``~/.aws`` (profiles,
  ``credential_process``, SSO) or probe the EC2 instance metadata endpoint.
  ``AWS_CONFIG_FILE``/``AWS_SHARED_CREDENTIALS_FILE`` point at nothing, so a developer's
  own AWS configuration can neither leak into nor break the definition.
* ``SAGEMAKER_VALIDATE_ROLE=false``: ``ModelTrainer`` otherwise validates the execution role
  with ``iam:SimulatePrincipalPolicy``.
* The SDK's own defaults files (``/etc/xdg/sagemaker/config.yaml``, ``~/.config/sagemaker``)
  are replaced by a fixed config that only opts out of telemetry (the SDK otherwise sends a
  telemetry HTTP request from a background thread on every ``train()``/``run()``), so a
  machine-local config cannot inject subnets, tags or keys into the definition.
* The session's default bucket is pinned by setting ``Session._default_bucket``: passing
  ``default_bucket=`` is not enough, ``Session.default_bucket()`` still calls S3 to check
  that the bucket exists (model registration calls it).
* A guard records and blocks every AWS API call (``BaseClient._make_api_call``), every
  botocore/``requests`` HTTP send and every socket connection or DNS lookup while the
  context is active (except py4j's loopback connections to a local Spark JVM, see
  :func:`_from_py4j`). The SDK swallows some exceptions (e.g. its staging-bucket probe), so
  blocking alone is not proof: any recorded attempt makes the context fail on exit. The
  patches are process-wide for the duration of the context (synth is single-threaded).
* Host hygiene: importing the SDK calls ``logging.basicConfig`` and the SDK logs at
  INFO/DEBUG; the root logger is restored on exit and SDK loggers are held at ERROR. Every
  patched function and environment variable is restored on exit.
* Speed: with a non-empty defaults config the SDK re-validates it against a large JSON
  schema on every config lookup (~15 s per pipeline); the fixed config is validated once.
  And every boto3/botocore session the SDK creates (dozens per synth) would build its own data
  loader and re-read the same service-model files: while the context is active, sessions share
  one loader per data path, kept for the process (:func:`shared_data_loaders`). The
  ``PipelineSession`` itself is made once per region and bucket and handed out again, cleared
  (:func:`_pipeline_session`), and the pipeline steps' argument check starts no local-mode
  session (:func:`_no_local_session_probe`).

Callers must also give code as ``s3://`` URIs (a local ``code=``/``source_dir`` is uploaded
at definition time) and explicit output paths; :mod:`mlops_loop.training.definition` does.

Nothing here imports AWS CDK.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Tuple

from pipeline_code.core.contract import aws_partition

# Dummy static credentials: they make botocore skip the credential provider chain. They can
# never authenticate anything, and the guard blocks every request anyway.
_DUMMY_ACCESS_KEY = "AKIAOFFLINEDEFINITION"
_DUMMY_SECRET_KEY = "offline-pipeline-definition-generation-only"

# The only SageMaker SDK defaults in effect while a definition is generated: handed to the
# PipelineSession, and written (as JSON, which is YAML) to the file both SDK defaults-file
# overrides point at, so machine-local defaults files are never read.
SDK_DEFAULTS: Dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}

# Environment variables removed while offline: anything that could select another
# credential source, profile or endpoint.
_ENV_REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_S3",
)

# Loggers silenced (below ERROR) while offline: the SDK is chatty at INFO/WARNING about
# exactly what this module does on purpose (role validation skipped, job names popped ...).
_QUIET_LOGGER_PREFIXES = ("sagemaker", "botocore.credentials")

# SDK modules a pipeline definition uses; imported up front inside the offline environment.
_SDK_MODULES = (
    "sagemaker.mlops.workflow",
    "sagemaker.core.processing",
    "sagemaker.train",
    "sagemaker.train.tuner",
    "sagemaker.serve.model_builder",
)
# The region the SDK is imported in, whatever region is asked for first: the client the import builds
# (sagemaker.ai_registry.air_hub) is never used for a definition, and one fixed region keeps what a process
# holds independent of the environment it served first, and the helper process's import (sdk_helper) the app's.
_IMPORT_REGION = "us-east-1"
# The default bucket of a session that only looks up images: never used, but the session needs one.
UNUSED_BUCKET = "unused-default-bucket"


class OfflineViolation(RuntimeError):
    """Something tried to reach AWS (or the network) while a definition was being generated."""


@dataclass
class _Guard:
    """Process-wide patches that block and record network access; re-entrant."""

    attempts: List[str] = field(default_factory=list)
    depth: int = 0
    originals: List[Tuple[Any, str, Any]] = field(default_factory=list)

    def record(self, what: str) -> OfflineViolation:
        self.attempts.append(what)
        return OfflineViolation(f"offline SageMaker definition generation attempted {what}")


_GUARD = _Guard()
_GUARD_LOCK = threading.RLock()


_MISSING = object()


def _patch(owner: Any, name: str, replacement: Callable[..., Any]) -> None:
    # Remember the attribute as owned by ``owner`` itself (socket.socket inherits ``connect``
    # from _socket.socket: restoring means deleting the override, not copying the base's).
    _GUARD.originals.append((owner, name, vars(owner).get(name, _MISSING)))
    setattr(owner, name, replacement)


def _from_py4j() -> bool:
    """True when py4j is on the calling stack: PySpark's bridge to the local Spark JVM of a process that
    also runs Spark (the local loop, the test suite). It is not the SDK, and it runs inside a definition
    build when the garbage collector finalizes an earlier Spark object there (py4j then opens a
    loopback connection to release the JVM-side object)."""
    frame = sys._getframe(2)  # pylint: disable=protected-access
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith("py4j."):
            return True
        frame = frame.f_back
    return False


def _install_guard() -> None:
    import botocore.client
    import botocore.httpsession

    def make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
        service = client.meta.service_model.service_name
        raise _GUARD.record(f"the AWS API call {service}.{operation_name}")

    def botocore_send(_session: Any, request: Any) -> Any:
        raise _GUARD.record(f"an HTTP request to {getattr(request, 'url', '?')} (botocore)")

    def blocked_unless_py4j(original: Callable[..., Any], attempt: Callable[..., str]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if _from_py4j():
                return original(*args, **kwargs)
            raise _GUARD.record(attempt(*args))

        return call

    def connection(_sock: Any, address: Any, *_: Any) -> str:
        return f"a socket connection to {address!r}"

    _patch(botocore.client.BaseClient, "_make_api_call", make_api_call)
    _patch(botocore.httpsession.URLLib3Session, "send", botocore_send)
    _patch(socket.socket, "connect", blocked_unless_py4j(socket.socket.connect, connection))
    _patch(socket.socket, "connect_ex", blocked_unless_py4j(socket.socket.connect_ex, connection))
    _patch(socket, "getaddrinfo", blocked_unless_py4j(socket.getaddrinfo, lambda host, *_: f"a DNS lookup of {host!r}"))
    try:
        import requests.sessions
    except ImportError:  # pragma: no cover - requests ships with the SDK
        return

    def requests_send(_session: Any, request: Any, **kwargs: Any) -> Any:
        raise _GUARD.record(f"an HTTP request to {getattr(request, 'url', '?')} (requests)")

    _patch(requests.sessions.Session, "send", requests_send)


def _remove_guard() -> None:
    while _GUARD.originals:
        owner, name, original = _GUARD.originals.pop()
        if original is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, original)


@contextlib.contextmanager
def network_guard() -> Iterator[List[str]]:
    """Block and record every AWS API call, HTTP request, socket connection and DNS lookup.

    Yields the list of recorded attempts (shared by nested guards). On exit, raises
    :class:`OfflineViolation` if anything was attempted inside this guard, even when the
    code that attempted it caught the exception.
    """
    with _GUARD_LOCK:
        if _GUARD.depth == 0:
            _GUARD.attempts.clear()
            _install_guard()
        _GUARD.depth += 1
        first_attempt = len(_GUARD.attempts)
    try:
        yield _GUARD.attempts
    finally:
        with _GUARD_LOCK:
            _GUARD.depth -= 1
            new_attempts = list(_GUARD.attempts[first_attempt:])
            if _GUARD.depth == 0:
                _remove_guard()
    if new_attempts:
        raise OfflineViolation(
            "offline SageMaker definition generation tried to reach AWS or the network: " + "; ".join(new_attempts)
        )


def _environment(region: str, sdk_defaults_path: str) -> ContextManager[None]:
    return _environ(
        {
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_ACCESS_KEY_ID": _DUMMY_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": _DUMMY_SECRET_KEY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_VALIDATE_ROLE": "false",
            "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": sdk_defaults_path,
            "SAGEMAKER_USER_CONFIG_OVERRIDE": sdk_defaults_path,
        },
        removed=_ENV_REMOVED,
    )


@contextlib.contextmanager
def _environ(values: Dict[str, str], removed: Tuple[str, ...] = ()) -> Iterator[None]:
    """``os.environ`` with ``values`` set and ``removed`` taken out, restored on exit."""
    saved = {name: os.environ.get(name) for name in (*values, *removed)}
    try:
        for name in removed:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _contained_logging() -> Iterator[None]:
    """Keep the SDK's logging side effects out of the host process (the CDK app).

    Importing the SDK calls ``logging.basicConfig(level=INFO)`` (sagemaker.core.experiments),
    which would attach a handler to the root logger of whoever imports us; the root logger
    is restored on exit. SDK loggers are silenced below ERROR during the build, and the
    SDK's UserWarnings ("Running within a PipelineSession ...") are suppressed.
    """
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    saved: Dict[str, int] = {}

    def quiet() -> None:
        for name in list(logging.root.manager.loggerDict):
            if name.startswith(_QUIET_LOGGER_PREFIXES) and name not in saved:
                logger = logging.getLogger(name)
                saved[name] = logger.level
                logger.setLevel(logging.ERROR)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"sagemaker(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sagemaker(\.|$)")
        try:
            _import_sdk_modules()
            quiet()
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
            for handler in list(root.handlers):
                if handler not in root_handlers:
                    root.removeHandler(handler)
            root.setLevel(root_level)


def _import_sdk_modules() -> None:
    """Import :data:`_SDK_MODULES` in :data:`_IMPORT_REGION` (inside the offline environment, which is restored)."""
    if all(module in sys.modules for module in _SDK_MODULES):
        return
    with _environ({"AWS_DEFAULT_REGION": _IMPORT_REGION, "AWS_REGION": _IMPORT_REGION}):
        for module in _SDK_MODULES:
            importlib.import_module(module)


def import_sdk() -> None:
    """Import the SDK offline, and warm what every session shares (botocore's loader, the validated SDK
    defaults), so that the next definition or lookup waits for neither (the helper process starts with it)."""
    with offline_sdk(_IMPORT_REGION, UNUSED_BUCKET):
        pass


class _UniquePaths(list):
    """A loader's search paths that ignore a path already present.

    boto3 appends its own data directory to the loader of every ``boto3.Session`` it creates; on a
    shared loader that would add one duplicate per session.
    """

    def append(self, path: Any) -> None:
        if path not in self:
            super().append(path)


# Data path (AWS_DATA_PATH) -> the one botocore loader for it; see shared_data_loaders.
_LOADERS: Dict[Optional[str], Any] = {}


@contextlib.contextmanager
def shared_data_loaders() -> Iterator[None]:
    """Give every botocore session created in the context the same data loader (per data path).

    A loader only reads and caches botocore's bundled JSON (service models, endpoints, paginators),
    which never changes within a process; without sharing, each of the SDK's sessions loads its own
    copy (about 40% of a synth's time). Restored on exit; the loaders are kept for the next context.
    """
    import botocore.loaders
    import botocore.session

    original = vars(botocore.session)["create_loader"]

    def shared(search_path_string: Optional[str] = None) -> Any:
        loader = _LOADERS.get(search_path_string)
        if loader is None:
            loader = botocore.loaders.create_loader(search_path_string)
            # Loader keeps its search paths in a list boto3 appends to (see _UniquePaths).
            loader._search_paths = _UniquePaths(loader.search_paths)  # pylint: disable=protected-access
            _LOADERS[search_path_string] = loader
        return loader

    botocore.session.create_loader = shared
    try:
        yield
    finally:
        botocore.session.create_loader = original


# SDK configs (as canonical JSON) already validated in this process: the schema does not change.
_VALIDATED_SDK_CONFIGS: set = set()


@contextlib.contextmanager
def _validate_sdk_defaults_once() -> Iterator[None]:
    """Validate the (fixed) SDK defaults once instead of on every config lookup.

    With any non-empty defaults config the SDK re-validates the whole config against its JSON
    schema on *every* lookup (``get_sagemaker_config_value``): ~80 validations of ~0.2 s per
    pipeline. The config here never changes, so a validated config is remembered by content, for
    the process (every context of a synth validated it again: 14 x 0.19 s).
    A pure speed-up: where the SDK's functions are missing, nothing is patched.
    """
    from sagemaker.core.config import config as config_module
    from sagemaker.core.config import config_manager

    targets = [
        (config_manager.SageMakerConfig, "validate_sagemaker_config", True),
        (config_module, "validate_sagemaker_config", False),
    ]
    saved = []
    for owner, name, is_static in targets:
        original = vars(owner).get(name)
        if original is None:
            continue
        function = original.__func__ if isinstance(original, staticmethod) else original

        def once(sagemaker_config: Optional[dict] = None, _validate: Callable[..., Any] = function) -> None:
            key = json.dumps(sagemaker_config, sort_keys=True, default=str)
            if key not in _VALIDATED_SDK_CONFIGS:
                _validate(sagemaker_config)
                _VALIDATED_SDK_CONFIGS.add(key)

        saved.append((owner, name, original))
        setattr(owner, name, staticmethod(once) if is_static else once)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@contextlib.contextmanager
def _no_local_session_probe() -> Iterator[None]:
    """Let the SDK's pipeline steps check their arguments without starting a local-mode session.

    ``ProcessingStep`` and ``TransformStep`` check who made their arguments by comparing the caller's
    name with ``LocalSagemakerClient().create_processing_job.__name__``: a whole local-mode SageMaker
    session (its own boto3 session and clients, ~15 ms) per step, 45 per synth, only to read a method's
    name. The class's own functions carry the same names, so the steps are handed the class in place of
    an instance. A pure speed-up: where the SDK has no such name, nothing is patched.
    """
    from sagemaker.mlops.workflow import steps

    original = vars(steps).get("LocalSagemakerClient")
    if not isinstance(original, type):  # no such name, or already handed out by an enclosing context
        yield
        return
    steps.LocalSagemakerClient = lambda *args, **kwargs: original
    try:
        yield
    finally:
        steps.LocalSagemakerClient = original


# (region, default bucket) -> the PipelineSession of this process; see _pipeline_session.
_SESSIONS: Dict[Tuple[str, str], Any] = {}


def _pipeline_session(region: str, default_bucket: str) -> Any:
    """The process's ``PipelineSession`` for ``region`` with ``default_bucket`` pinned, made on first use.

    Making one builds a boto3 session and its clients (~90 ms); a synth asks for one per definition
    and per image lookup, a dozen or more. What a build can leave on the session is its step-argument
    capture (``context``): the SDK clears it after each model step, but not when a build fails midway,
    and reuses a model step's capture it finds. It is cleared before the session is handed out again,
    so each build starts from what a new session holds (tests/pipeline_definition: a spec built after
    another is the spec built on a new session; a capture left behind is gone).
    """
    key = (region, default_bucket)
    session = _SESSIONS.get(key)
    if session is None:
        session = _SESSIONS[key] = _new_pipeline_session(region, default_bucket)
    session.context = None
    return session


def _new_pipeline_session(region: str, default_bucket: str) -> Any:
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    boto_session = boto3.Session(
        aws_access_key_id=_DUMMY_ACCESS_KEY,
        aws_secret_access_key=_DUMMY_SECRET_KEY,
        region_name=region,
    )
    session = PipelineSession(
        boto_session=boto_session,
        default_bucket=default_bucket,
        sagemaker_config=SDK_DEFAULTS,
    )
    # Session.default_bucket() checks (and may create) the bucket unless it is already set.
    session._default_bucket = default_bucket  # pylint: disable=protected-access
    return session


@contextlib.contextmanager
def offline_sdk(region: str, default_bucket: str) -> Iterator[Any]:
    """Environment, guard and a ``PipelineSession`` for generating definitions offline.

    Import SageMaker SDK modules *inside* this context (the first import needs the region).
    The yielded session has ``default_bucket`` pinned; the definition should still give every
    S3 location explicitly, the default bucket is only a safety net that never gets created.

    Raises:
        OfflineViolation: on exit, if anything inside tried to reach AWS or the network.
    """
    if not region:
        raise ValueError("offline_sdk: a region is required (the SDK resolves image URIs per region)")
    if not default_bucket:
        raise ValueError("offline_sdk: a default bucket is required")
    with tempfile.TemporaryDirectory(prefix="mlops-loop-sdk-") as tmp:
        sdk_defaults_path = os.path.join(tmp, "config.yaml")
        with open(sdk_defaults_path, "w", encoding="utf-8") as handle:
            json.dump(SDK_DEFAULTS, handle)
        with _environment(region, sdk_defaults_path), shared_data_loaders(), network_guard(), _contained_logging():
            with _validate_sdk_defaults_once(), _no_local_session_probe():
                yield _pipeline_session(region, default_bucket)


def guarded_attempts() -> Optional[List[str]]:
    """The attempts recorded by the active guard (None when no guard is active); for tests."""
    with _GUARD_LOCK:
        return list(_GUARD.attempts) if _GUARD.depth else None


def image_uri(framework: str, region: str, version: Optional[str] = None, **options: str) -> str:
    """The SDK's URI of the stock ``framework`` image in ``region`` (its offline tables, cached by sdk_cache);
    ``options`` go to ``image_uris.retrieve`` (e.g. ``py_version``, ``instance_type``, ``image_scope``).

    Raises:
        ValueError: the SDK has no such image in ``region`` (from ``image_uris.retrieve``).
    """
    from . import sdk_helper
    from .sdk_cache import sdk_cache

    request = {"framework": framework, "region": region, "version": version, **options}
    return sdk_cache().get_or_create("image-uri", request, lambda: sdk_helper.run(_retrieve_image_uri, request))


def _retrieve_image_uri(request: Dict[str, Any]) -> str:
    """``image_uris.retrieve`` of an :func:`image_uri` request, offline."""
    region = request["region"]
    with offline_sdk(region, UNUSED_BUCKET):
        from sagemaker.core import image_uris

        options = {name: value for name, value in request.items() if name not in ("framework", "region", "version")}
        return image_uris.retrieve(request["framework"], region=region, version=request["version"], **options)


def clarify_analysis_configs(request: Dict[str, Any]) -> str:
    """The Clarify analysis configs ``[bias, explainability]`` (JSON) of a request of
    :func:`mlops_loop.constructs.native_model_monitor.analysis_configs`, built offline with the SDK's own classes.

    Bias: label = the target (positive value 1), facet = the sensitive attribute, headers = the features, the
    sensitive attribute and the target. Explainability: Kernel SHAP (``shap_samples`` samples, mean absolute
    values) over the features, calling the endpoint ``endpoint_name`` with CSV records and reading CSV.
    """
    with offline_sdk(request["region"], UNUSED_BUCKET):
        from sagemaker.core import clarify
        from sagemaker.core.model_monitor.clarify_model_monitoring import (
            BiasAnalysisConfig,
            ExplainabilityAnalysisConfig,
        )

        features, target = list(request["features"]), request["target"]
        bias = BiasAnalysisConfig(
            clarify.BiasConfig(label_values_or_threshold=[1], facet_name=request["sensitive_attribute"]),
            headers=[*features, request["sensitive_attribute"], target],
            label=target,
        )._to_dict()
        explainability = ExplainabilityAnalysisConfig(
            clarify.SHAPConfig(num_samples=request["shap_samples"], agg_method="mean_abs", use_logit=False,
                               save_local_shap_values=False),
            clarify.ModelConfig(endpoint_name=request["endpoint_name"], content_type="text/csv", accept_type="text/csv"),
            headers=features,
        )._to_dict()
    return json.dumps([bias, explainability])


def training_image_uri(framework: str, region: str, instance_type: str) -> str:
    """The image a ``framework`` model's training job runs on ``instance_type`` in ``region``: the stock XGBoost
    image; for a network the SDK's stock PyTorch training image (CPU or GPU build), or on Trainium the pinned
    Neuron training image in the same registry (the SDK's registry map; its own Trainium table is years old).

    Raises:
        ValueError: no such image in ``region``, naming the framework and version.
    """
    from ..config.instance_types import INSTANCE_TYPES
    from .names import NEURON_TRAINING_REPOSITORY, NEURON_TRAINING_TAG, XGBOOST_FRAMEWORK, XGBOOST_VERSION

    if framework == XGBOOST_FRAMEWORK:
        return image_uri(XGBOOST_FRAMEWORK, region, XGBOOST_VERSION)
    if INSTANCE_TYPES[instance_type].accelerator == "trainium":
        return _neuron_image(region, NEURON_TRAINING_REPOSITORY, NEURON_TRAINING_TAG)
    return _pytorch_training_image(region, instance_type)


def neuron_inference_image_uri(region: str) -> str:
    """AWS's pinned Neuron inference image in ``region`` (``pytorch-inference-neuronx``, in the registry of the SDK's
    PyTorch images): the Compile step and an ml.inf2 endpoint run it.

    Raises:
        ValueError: the SDK knows no PyTorch registry in ``region``.
    """
    from .names import NEURON_INFERENCE_REPOSITORY, NEURON_INFERENCE_TAG

    return _neuron_image(region, NEURON_INFERENCE_REPOSITORY, NEURON_INFERENCE_TAG)


def _pytorch_training_image(region: str, instance_type: str) -> str:
    from .names import PYTORCH_FRAMEWORK, PYTORCH_PY_VERSION, PYTORCH_VERSION

    try:
        return image_uri(PYTORCH_FRAMEWORK, region, PYTORCH_VERSION, py_version=PYTORCH_PY_VERSION, image_scope="training",
                         instance_type=instance_type)
    except ValueError as exc:
        raise ValueError(f"no SageMaker PyTorch {PYTORCH_VERSION} training image in {region}: {exc}") from None


def _neuron_image(region: str, repository: str, tag: str) -> str:
    """``repository:tag`` of AWS's Neuron images, pinned, in the registry of the SDK's PyTorch images in ``region``."""
    return f"{_pytorch_training_image(region, 'ml.m5.xlarge').split('/', 1)[0]}/{repository}:{tag}"


def repository_arn(uri: str, region: str) -> str:
    """The ECR repository ARN of an image URI (``<account>.dkr.ecr.<region>.amazonaws.com/<name>:<tag>``)."""
    registry_account, _, rest = uri.partition(".dkr.ecr.")
    return f"arn:{aws_partition(region)}:ecr:{region}:{registry_account}:repository/{rest.split('/', 1)[1].split(':')[0]}"
