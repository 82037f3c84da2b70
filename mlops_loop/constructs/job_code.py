"""The job code (pipeline_code/) packaged as S3 assets for Glue and SageMaker jobs."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

import jsii
from aws_cdk import IgnoreMode, IgnoreStrategy, IStableListProducer, Lazy
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from pipeline_code.catalog import Dataset
from pipeline_code.core.contract import pascal
from pipeline_code.core.integrity import files_digest

from ..config.model import ModelConfig
from .access_policy import AccessPolicy
from .generated_asset import generated_asset

REPO_ROOT = Path(__file__).resolve().parents[2]
# The folder of the repository every job-code asset is made from: the library zip, the entry scripts, and the
# handlers' code root (mlops_loop.packaging) are all files under it.
JOB_CODE_ROOT = "pipeline_code"
PIPELINE_CODE = REPO_ROOT / JOB_CODE_ROOT

# The library zip must hold the ``pipeline_code/`` package at its root so that
# ``import pipeline_code.catalog`` works from Glue's --extra-py-files; the asset is therefore
# the repository root with everything but that package excluded.
_LIBRARY_EXCLUDES = [
    "*",
    ".*",
    f"!{JOB_CODE_ROOT}",
    f"!{JOB_CODE_ROOT}/**",
    f"{JOB_CODE_ROOT}/**/__pycache__",
    f"{JOB_CODE_ROOT}/**/*.pyc",
]


def shipped_in_library(repo: Path, paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` (files, relative to ``repo``, ``/``-separated) that the library zip of ``repo`` holds.

    Asked of the CDK's own matcher with the library's excludes, so it cannot drift from what the zip takes: a
    path ships unless it, or a folder above it, is excluded (the CDK skips an excluded folder whole).
    """
    ignore = IgnoreStrategy.glob(str(repo), _LIBRARY_EXCLUDES)
    folders: dict[str, bool] = {}

    def excluded(relative: str) -> bool:
        return bool(ignore.ignores(str(repo / relative)))

    def folder_excluded(relative: str) -> bool:
        if relative not in folders:
            parent = relative.rpartition("/")[0]
            folders[relative] = (bool(parent) and folder_excluded(parent)) or excluded(relative)
        return folders[relative]

    shipped = []
    for path in paths:
        parent = path.rpartition("/")[0]
        if not (parent and folder_excluded(parent)) and not excluded(path):
            shipped.append(path)
    return shipped


def library_files(repo: Path) -> list[str]:
    """Every file the library zip of ``repo`` holds, by its name in the zip (``/``-separated, sorted).

    Symbolic links are followed, folders too, as the zip does: the CDK stages a link to a folder outside the repository
    as a copy and keeps one inside it, and ``cdk deploy`` (cdk-assets) zips the staged folder following links
    (``Path.rglob`` does not descend into linked folders)."""
    root = repo / JOB_CODE_ROOT
    found = sorted((Path(folder) / name).relative_to(repo).as_posix()
                   for folder, _, files in os.walk(root, followlinks=True) for name in files
                   if (Path(folder) / name).is_file())
    return shipped_in_library(repo, found)


@functools.lru_cache(maxsize=None)
def library_digest(repo: Path = REPO_ROOT) -> str:
    """The digest of the library zip's files (:func:`pipeline_code.core.integrity.files_digest` of each file's name in
    the zip and sha256), which every SageMaker job checks the zip it was given against before running any of it
    (``MLOPS_LOOP_CODE_SHA256``, pipeline_code/sagemaker_entry.py). Computed once per process, as the asset's own hash
    is: synth reads the files once."""
    return files_digest({name: hashlib.sha256((repo / name).read_bytes()).hexdigest() for name in library_files(repo)})


def model_spec_json(model: ModelConfig) -> str:
    """The model's config as the jobs read it (``--model-spec``), in its most compact JSON form."""
    return json.dumps(model.job_spec(), separators=(",", ":"))


class JobCode(Construct):
    """Uploads ``pipeline_code`` once per stack: a zip of the package plus one asset per entry script,
    model spec and dataset declaration.

    Assets are content-hashed, so a code change produces a new S3 key and a template diff in review.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.library = s3_assets.Asset(
            self,
            "Library",
            path=str(REPO_ROOT),
            exclude=_LIBRARY_EXCLUDES,
            ignore_mode=IgnoreMode.GLOB,
        )
        # What every job verifies the zip against (library_digest): the code, by content, a version records.
        self.library_sha256 = library_digest(REPO_ROOT)
        self._scripts: dict[str, s3_assets.Asset] = {}
        self._readers: list[AccessPolicy] = []
        self._specs: dict[str, s3_assets.Asset] = {}
        # Per listing reader (by identity; self._readers keeps each alive), the object keys it may list, filled until synth.
        self._listed: dict[int, _Keys] = {}
        self._locations: dict[int, tuple[s3_assets.Asset, str, str]] = {}  # id -> (asset kept alive, bucket, key)

    def script(self, relative_path: str) -> s3_assets.Asset:
        """The asset of the entry script at ``pipeline_code/<relative_path>`` (created once)."""
        if relative_path not in self._scripts:
            path = PIPELINE_CODE / relative_path
            if not path.is_file():
                raise FileNotFoundError(f"job entry script not found: {path}")
            asset_id = "Script" + pascal(path.stem)
            asset = s3_assets.Asset(self, asset_id, path=str(path))
            self._scripts[relative_path] = asset
            for access in self._readers:
                self._allow(access, _sid(relative_path), asset)
        return self._scripts[relative_path]

    @staticmethod
    def script_sha256(relative_path: str) -> str:
        """The sha256 of the entry script at ``pipeline_code/<relative_path>``: the bytes its asset uploads as they are,
        which a job's command checks before running it (sagemaker_entry.container_entrypoint)."""
        return hashlib.sha256((PIPELINE_CODE / relative_path).read_bytes()).hexdigest()

    def model_spec(self, model: ModelConfig) -> s3_assets.Asset:
        """The model's spec (``model-spec.json``) as an asset, created once per model.

        Container arguments hold at most 256 characters, so the spec travels as a small S3 asset
        (content-hashed: a changed model config is a new object and a template diff).
        """
        if model.name not in self._specs:
            self._specs[model.name] = generated_asset(self, f"ModelSpec{pascal(model.name)}", "model-spec.json",
                                                       model_spec_json(model))
        return self._specs[model.name]

    def dataset(self, dataset: Dataset) -> s3_assets.Asset:
        """The dataset's declaration (``<dataset>.json``) as an asset the Glue jobs read (``--dataset``),
        created once per dataset and readable by every reader of this code."""
        key = f"dataset:{dataset.name}"
        if key not in self._scripts:
            text = json.dumps(dataset.to_declaration(), separators=(",", ":"))
            asset = generated_asset(self, f"Dataset{pascal(dataset.name)}", f"{dataset.name}.json", text)
            self._scripts[key] = asset
            for access in self._readers:
                self._allow(access, _sid(key), asset)
        return self._scripts[key]

    def grant_read(self, access: AccessPolicy, *, listing: bool = False) -> None:
        """Let ``access`` read exactly the asset objects of this job code (scripts added later included).

        With ``listing`` it may also list exactly those keys (statement ``CodeListing``): SageMaker
        downloads an ``S3Prefix`` job input by listing its key first (ListObjectsV2), so a processing
        or training job whose code arrives as inputs needs it. Glue reads its files directly and needs none.
        """
        self._readers.append(access)
        if listing:
            keys = self._listed[id(access)] = _Keys()
            access.allow("CodeListing", ["s3:ListBucket"], [access.s3_arn(self._location(self.library)[0])],
                         conditions={"StringEquals": {"s3:prefix": Lazy.list(keys)}})
        self._allow(access, "JobLibrary", self.library)
        for asset_id, asset in self._scripts.items():
            self._allow(access, _sid(asset_id), asset)

    def grant_glue_job(self, access: AccessPolicy, *, script: str, dataset: Dataset) -> None:
        """Let ``access`` read what one Glue job of ``dataset`` reads of this code: the library, the entry script at
        ``pipeline_code/<script>`` and the dataset's declaration (statements ``JobLibrary``, ``Code<Script>`` and
        ``CodeDataset<Dataset>``), and no other script or declaration. Glue reads its files directly: no listing."""
        self._allow(access, "JobLibrary", self.library)
        self._allow(access, _sid(script), self.script(script))
        self._allow(access, _sid(f"dataset:{dataset.name}"), self.dataset(dataset))

    def grant_model_spec(self, access: AccessPolicy, model: ModelConfig) -> s3_assets.Asset:
        """Let ``access`` read (and, if it lists, list) ``model``'s spec (statement ``ReadModelSpec``); returns the asset.

        Only the job of that model is granted its spec: one model's jobs never read another's config."""
        spec = self.model_spec(model)
        self._allow(access, "ReadModelSpec", spec)
        return spec

    def _allow(self, access: AccessPolicy, sid: str, asset: s3_assets.Asset) -> None:
        bucket, key = self._location(asset)
        access.allow(sid, ["s3:GetObject"], [access.s3_arn(bucket, key)])
        if id(access) in self._listed:
            self._listed[id(access)].keys.append(key)

    def _location(self, asset: s3_assets.Asset) -> tuple[str, str]:
        """The asset's bucket and key tokens, read from the CDK once per asset (every reader's policy names them)."""
        known = self._locations.get(id(asset))
        if known is None:
            known = self._locations[id(asset)] = (asset, asset.s3_bucket_name, asset.s3_object_key)
        return known[1], known[2]


@jsii.implements(IStableListProducer)
class _Keys:
    """The object keys a reader may list, produced at synth (scripts may be added after the grant)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def produce(self, context=None) -> list[str]:
        return list(self.keys)


def _sid(name: str) -> str:
    return "Code" + "".join(ch for ch in name.title() if ch.isalnum())
