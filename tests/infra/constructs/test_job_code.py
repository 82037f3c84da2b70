"""JobCode, built in a bare stack: pipeline_code as content-hashed S3 assets (a library zip, entry scripts,
model specs, dataset declarations) and read access to exactly those objects."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aws_cdk import Environment, IgnoreMode, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.config import parse_config
from mlops_loop.config.model import ModelConfig
from mlops_loop.constructs.access_policy import AccessPolicy
from mlops_loop.constructs.dataset_workflow import CURATE_SCRIPT, FEATURES_SCRIPT
from mlops_loop.constructs import job_code
from mlops_loop.constructs.job_code import PIPELINE_CODE, REPO_ROOT, JobCode, model_spec_json, shipped_in_library
from pipeline_code import sagemaker_entry
from pipeline_code.catalog import parse_dataset
from tests.support.construct_configs import WEB_ORDERS

ACCOUNT, REGION = "123456789012", "eu-west-1"
ASSETS_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
CURATE = "etl/glue_curate_job.py"
INGEST = "features/ingest.py"



def _model(name: str = "chargeback", features: tuple[str, ...] = ("amount", "log_items")) -> ModelConfig:
    """A model of this test's own dataset, validated by the one config parser synth uses."""
    config = parse_config({
        "project": "shop",
        "datasets": {"web_orders": WEB_ORDERS},
        "models": {name: {"dataset": "web_orders", "target": "charged_back", "features": list(features),
                          "sensitive_attribute": "channel", "description": "Flags orders likely to be charged back"}},
        "environments": {"dev": {"tier": "dev", "account": ACCOUNT, "region": REGION, "models": [name]}},
    })
    return config.models[name]


MODEL = _model()
DATASET = MODEL.catalog_dataset


def _code(outdir: Path) -> tuple[Stack, JobCode]:
    """GIVEN a bare stack whose app stages assets in ``outdir`` WHEN a JobCode is added."""
    stack = Stack(new_app(str(outdir)), "Bare", env=Environment(account=ACCOUNT, region=REGION))
    return stack, JobCode(stack, "Code")


def _reader(stack: Stack, name: str) -> AccessPolicy:
    role = iam.Role(stack, f"{name}Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
    return AccessPolicy(stack, name, role=role, description=f"{name} access")


def _statements(stack: Stack, access: AccessPolicy) -> dict[str, dict]:
    policy = Template.from_stack(stack).to_json()["Resources"][stack.get_logical_id(access.managed_policy)]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def _object_arn(stack: Stack, asset) -> str:
    return f"arn:aws:s3:::{ASSETS_BUCKET}/{stack.resolve(asset.s3_object_key)}"


def _staged(outdir: Path, asset) -> Path:
    return outdir / asset.asset_path


# ------------------------------------------------------------------ the library
def test_the_library_zip_holds_the_pipeline_code_package_at_its_root_and_nothing_else(tmp_path):
    """Glue's --extra-py-files and the SageMaker jobs import ``pipeline_code.*`` from the zip's root."""
    stack, code = _code(tmp_path)
    assert code.library.is_zip_archive and stack.resolve(code.library.s3_object_key).endswith(".zip")
    staged = _staged(tmp_path, code.library)
    assert [p.name for p in staged.iterdir()] == ["pipeline_code"]
    shipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    source = {p.relative_to(REPO_ROOT).as_posix() for p in PIPELINE_CODE.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert shipped == source
    assert "pipeline_code/catalog.py" in shipped and not [f for f in shipped if "__pycache__" in f or f.endswith(".pyc")]


def test_shipped_in_library_names_exactly_the_files_the_zip_takes(tmp_path):
    """GIVEN the library zip as the CDK stages it WHEN shipped_in_library is asked about every file under the job code,
    files outside it and paths the excludes leave out (bytecode, a file inside a bytecode folder, dot-files and
    dot-folders) THEN it names exactly the zipped files: what the code version checks for untracked job code."""
    stack, code = _code(tmp_path)
    staged = _staged(tmp_path, code.library)
    zipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    left_out = ["pipeline_code/training/__pycache__/train.cpython-311.pyc", "pipeline_code/training/__pycache__/notes.py",
                "pipeline_code/stray.pyc", "pipeline_code/.env", "pipeline_code/.ipynb_checkpoints/train.py",
                "app.py", "mlops_loop/app_builder.py", "config/mlops-loop.yaml", ".gitignore"]
    candidates = sorted({p.relative_to(REPO_ROOT).as_posix() for p in PIPELINE_CODE.rglob("*") if p.is_file()} | set(left_out))
    assert set(shipped_in_library(REPO_ROOT, candidates)) == zipped
    assert shipped_in_library(REPO_ROOT, ["pipeline_code/training/new_module.py", *left_out]) == [
        "pipeline_code/training/new_module.py"]


def _zip_as_cdk_assets_does(staged: Path, target: Path) -> Path:
    """The zip ``cdk deploy`` uploads of a staged directory: every file (dot-files too), symbolic links followed
    (cdk-assets' writeZipFile: fast-glob ``**`` with followSymbolicLinks), named by its ``/``-separated relative path."""
    with zipfile.ZipFile(target, "w") as archive:
        for folder, _, files in os.walk(staged, followlinks=True):
            for name in files:
                path = Path(folder, name)
                archive.write(path, path.relative_to(staged).as_posix())
    return target


def test_the_digest_every_job_checks_is_of_the_zip_cdk_deploy_uploads_even_with_linked_folders(tmp_path):
    """GIVEN job code holding a symbolic link to a folder outside the repository (code shared with another project)
    and one to a folder inside it WHEN the library is staged as JobCode stages it and zipped as cdk-assets zips it
    THEN the digest synth gives every job (library_digest) is the zip's: the CDK copies or keeps the links and the zip
    follows them, so a digest that skipped linked folders would make every job refuse the code it was deployed with."""
    repo, shared = tmp_path / "repo", tmp_path / "shared"
    (repo / "pipeline_code" / "training").mkdir(parents=True)
    (repo / "pipeline_code" / "__init__.py").write_text("")
    (repo / "pipeline_code" / "training" / "train.py").write_text("print('train')\n")
    (repo / "app.py").write_text("not job code\n")
    shared.mkdir()
    (shared / "util.py").write_text("X = 1\n")
    (repo / "pipeline_code" / "shared").symlink_to(shared, target_is_directory=True)
    (repo / "pipeline_code" / "training_alias").symlink_to(repo / "pipeline_code" / "training", target_is_directory=True)
    outdir = tmp_path / "out"
    stack = Stack(new_app(str(outdir)), "Bare", env=Environment(account=ACCOUNT, region=REGION))
    library = s3_assets.Asset(stack, "Library", path=str(repo), exclude=job_code._LIBRARY_EXCLUDES,
                              ignore_mode=IgnoreMode.GLOB)
    zipped = _zip_as_cdk_assets_does(_staged(outdir, library), tmp_path / "library.zip")
    assert "pipeline_code/shared/util.py" in zipfile.ZipFile(zipped).namelist()
    assert job_code.library_digest(repo) == sagemaker_entry.zip_digest(str(zipped))[0]


# ------------------------------------------------------------------ entry scripts
def test_an_entry_script_is_one_asset_of_that_file_created_once(tmp_path):
    stack, code = _code(tmp_path)
    curate = code.script(CURATE)
    assert code.script(CURATE) is curate
    assert curate.node.id == "ScriptGlueCurateJob"
    assert _staged(tmp_path, curate).read_bytes() == (PIPELINE_CODE / CURATE).read_bytes()
    assert stack.resolve(curate.s3_object_key).endswith(".py")
    assert stack.resolve(code.script(INGEST).s3_object_key) != stack.resolve(curate.s3_object_key)


def _zip_of(staged: Path, zip_path: Path, leave_out: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(p for p in staged.rglob("*") if p.is_file()):
            name = file.relative_to(staged).as_posix()
            if not (leave_out and name.startswith(leave_out)):
                archive.write(file, name)
    return zip_path


def _import_script(script: Path, library: Path) -> subprocess.CompletedProcess:
    """Load ``script`` as Glue does (the script asset alone, ``library`` on the path as --extra-py-files), without
    running its ``__main__`` block; print where ``pipeline_code`` came from."""
    code = (f"import sys, runpy; sys.path[:0] = [{str(library)!r}]; runpy.run_path({str(script)!r}, run_name='glue_job'); "
            "import pipeline_code; print(pipeline_code.__file__)")
    return subprocess.run([sys.executable, "-c", code], cwd=script.parent, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("script", [CURATE_SCRIPT, FEATURES_SCRIPT])
def test_each_glue_jobs_script_imports_everything_it_needs_from_the_library_zip_alone(tmp_path, script):
    """GIVEN the Glue job's script asset alone in a folder and the library zip as the CDK stages it (a job's
    --extra-py-files) WHEN the script is loaded THEN its imports resolve, from the zip: a module the script's code
    imports (the feature job's parts in pipeline_code/features/ingestion/) reaches the job."""
    stack, code = _code(tmp_path / "out")
    alone = tmp_path / "script" / Path(script).name
    alone.parent.mkdir()
    alone.write_bytes(_staged(tmp_path / "out", code.script(script)).read_bytes())
    library = _zip_of(_staged(tmp_path / "out", code.library), tmp_path / "library.zip")
    result = _import_script(alone, library)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(library))


def test_a_library_zip_without_the_feature_jobs_parts_fails_to_load_its_script(tmp_path):
    """Non-vacuity of the test above: the parts are imported from the zip, not found elsewhere."""
    stack, code = _code(tmp_path / "out")
    alone = tmp_path / "script" / "ingest.py"
    alone.parent.mkdir()
    alone.write_bytes(_staged(tmp_path / "out", code.script(FEATURES_SCRIPT)).read_bytes())
    library = _zip_of(_staged(tmp_path / "out", code.library), tmp_path / "library.zip",
                      leave_out="pipeline_code/features/ingestion/")
    result = _import_script(alone, library)
    assert result.returncode != 0
    assert "No module named 'pipeline_code.features.ingestion'" in result.stderr


def test_a_script_that_does_not_exist_is_refused_naming_its_path(tmp_path):
    _, code = _code(tmp_path)
    message = f"job entry script not found: {PIPELINE_CODE / 'etl' / 'no_such_job.py'}"
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(message)}$"):
        code.script("etl/no_such_job.py")


def test_a_directory_is_not_an_entry_script(tmp_path):
    _, code = _code(tmp_path)
    message = f"job entry script not found: {PIPELINE_CODE / 'etl'}"
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(message)}$"):
        code.script("etl")


# ------------------------------------------------------------------ model specs
def test_the_model_spec_is_the_models_job_spec_in_its_most_compact_json():
    text = model_spec_json(MODEL)
    assert json.loads(text) == MODEL.job_spec()
    assert text == json.dumps(MODEL.job_spec(), separators=(",", ":"))
    assert json.loads(text)["dataset"] == DATASET.to_declaration(), "the spec carries the dataset's whole declaration"


def test_a_model_spec_is_one_json_asset_per_model_holding_its_spec(tmp_path):
    stack, code = _code(tmp_path)
    spec = code.model_spec(MODEL)
    assert code.model_spec(MODEL) is spec
    assert spec.node.id == "ModelSpecChargeback"
    assert _staged(tmp_path, spec).read_text() == model_spec_json(MODEL)
    assert stack.resolve(spec.s3_object_key).endswith(".json")


def test_a_changed_model_config_is_a_new_object_and_an_unchanged_one_the_same(tmp_path):
    """Content-hashed: a code or config change shows up as a new S3 key in the template diff."""
    stack_a, code_a = _code(tmp_path / "a")
    stack_b, code_b = _code(tmp_path / "b")
    same = stack_b.resolve(code_b.model_spec(_model()).s3_object_key)
    assert stack_a.resolve(code_a.model_spec(MODEL).s3_object_key) == same
    other = JobCode(stack_b, "OtherCode").model_spec(_model(features=("amount",)))
    assert stack_b.resolve(other.s3_object_key) != same


# ------------------------------------------------------------------ dataset declarations
def test_a_dataset_declaration_is_one_json_asset_per_dataset_the_glue_jobs_read(tmp_path):
    stack, code = _code(tmp_path)
    declaration = code.dataset(DATASET)
    assert code.dataset(DATASET) is declaration
    assert declaration.node.id == "DatasetWebOrders"
    assert json.loads(_staged(tmp_path, declaration).read_text()) == DATASET.to_declaration()
    assert stack.resolve(declaration.s3_object_key).endswith(".json")


# ------------------------------------------------------------------ read access
def test_a_reader_gets_exactly_the_library_scripts_and_declarations_including_later_ones_but_no_model_spec(tmp_path):
    """GIVEN a script added before and a script, a declaration and a model spec added after the grant THEN the reader
    may get each script, declaration and the library by its exact key, and no model spec (each pipeline grants its own)."""
    stack, code = _code(tmp_path)
    early = code.script(CURATE)
    reader = _reader(stack, "Reader")
    code.grant_read(reader)
    late = code.script(INGEST)
    declaration = code.dataset(DATASET)
    spec = code.model_spec(MODEL)
    statements = _statements(stack, reader)
    assert statements == {
        sid: {"Sid": sid, "Effect": "Allow", "Action": "s3:GetObject", "Resource": _object_arn(stack, asset)}
        for sid, asset in (("JobLibrary", code.library), ("CodeEtlGlueCurateJobPy", early), ("CodeFeaturesIngestPy", late),
                           ("CodeDatasetWebOrders", declaration))
    }
    assert _object_arn(stack, spec) not in [s["Resource"] for s in statements.values()]


def test_a_glue_job_reads_the_library_its_script_and_its_datasets_declaration_only(tmp_path):
    """GIVEN job code with two scripts and two datasets' declarations WHEN one Glue job's role is granted its files THEN
    it reads the library, its own script and its own dataset's declaration, nothing else (no listing: Glue reads
    its files directly)."""
    stack, code = _code(tmp_path)
    other_script, other_declaration = code.script(INGEST), code.dataset(parse_dataset("returns", WEB_ORDERS))
    job = _reader(stack, "CurateJob")
    code.grant_glue_job(job, script=CURATE, dataset=DATASET)
    statements = _statements(stack, job)
    assert statements == {
        sid: {"Sid": sid, "Effect": "Allow", "Action": "s3:GetObject", "Resource": _object_arn(stack, asset)}
        for sid, asset in (("JobLibrary", code.library), ("CodeEtlGlueCurateJobPy", code.script(CURATE)),
                           ("CodeDatasetWebOrders", code.dataset(DATASET)))
    }
    assert {_object_arn(stack, other_script), _object_arn(stack, other_declaration)}.isdisjoint(
        s["Resource"] for s in statements.values())


def test_every_reader_gets_each_script_added_later(tmp_path):
    stack, code = _code(tmp_path)
    first, second = _reader(stack, "First"), _reader(stack, "Second")
    code.grant_read(first)
    code.grant_read(second)
    script = code.script(CURATE)
    for reader in (first, second):
        assert _statements(stack, reader)["CodeEtlGlueCurateJobPy"]["Resource"] == _object_arn(stack, script)


def test_a_listing_reader_may_list_exactly_the_keys_it_may_read_including_later_ones_and_its_model_spec(tmp_path):
    """SageMaker lists an S3Prefix input's key before downloading it: a reader granted with ``listing`` (a SageMaker
    job role) may list its code's keys - scripts added after the grant and the model spec granted to it included -
    and no other key; a reader without ``listing`` (Glue) gets no listing."""
    stack, code = _code(tmp_path)
    early = code.script(CURATE)
    sagemaker_job, glue_job = _reader(stack, "SageMakerJob"), _reader(stack, "GlueJob")
    code.grant_read(sagemaker_job, listing=True)
    code.grant_read(glue_job)
    late = code.script(INGEST)
    spec = code.grant_model_spec(sagemaker_job, MODEL)
    statements = _statements(stack, sagemaker_job)
    listing = statements["CodeListing"]
    assert (listing["Action"], listing["Resource"]) == ("s3:ListBucket", f"arn:aws:s3:::{ASSETS_BUCKET}")
    keys = [stack.resolve(a.s3_object_key) for a in (code.library, early, late, spec)]
    assert sorted(listing["Condition"]["StringEquals"]["s3:prefix"]) == sorted(keys)
    assert statements["ReadModelSpec"]["Resource"] == _object_arn(stack, spec)
    assert "CodeListing" not in _statements(stack, glue_job) and "ReadModelSpec" not in _statements(stack, glue_job)
