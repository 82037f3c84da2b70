"""The stock SageMaker XGBoost image: one definition (``pipeline_code.core.images``) that the pipeline definition,
the instance-type table, the local XGBoost pin, the documentation and synth's end-of-patch warning follow."""

from __future__ import annotations

import datetime
import re

import pytest

from mlops_loop.config.instance_types import FRAMEWORKS
from mlops_loop.training import names
from pipeline_code.core import images
from pipeline_code.core.frameworks import XGBOOST
from tests.support import docs
from tests.support.paths import REPO_ROOT


def _pin(path, package: str) -> str:
    (version,) = re.findall(rf"^{package}==(\S+)", (REPO_ROOT / path).read_text(), flags=re.MULTILINE)
    return version


def test_the_pipeline_definition_runs_the_one_image_version():
    assert names.XGBOOST_VERSION == images.XGBOOST_IMAGE_VERSION


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_the_instance_type_table_names_the_image_that_serves(framework):
    """Every framework served in the XGBoost image (trees, and a network scored with numpy) names that image's
    version; a framework served elsewhere (say, a future one on its own image) names another."""
    label = FRAMEWORKS[framework].serving_image
    if label.startswith(images.XGBOOST_IMAGE_REPOSITORY):
        assert label == images.xgboost_image_label()
    if framework == XGBOOST:
        assert FRAMEWORKS[framework].image == FRAMEWORKS[framework].serving_image == images.xgboost_image_label()


@pytest.mark.parametrize("path", ["requirements-dev.txt", "requirements.lock"])
def test_local_training_pins_the_xgboost_of_the_container(path):
    """GIVEN the image moves (or a pin moves on its own, e.g. an update PR) THEN the local training, the tests and the
    local run train with another XGBoost than the jobs in AWS do: refused here until both say the same."""
    assert _pin(path, "xgboost") == images.XGBOOST_LIBRARY_VERSION, (
        f"{path} pins xgboost=={_pin(path, 'xgboost')}, the SageMaker XGBoost {images.XGBOOST_IMAGE_VERSION} image "
        f"holds {images.XGBOOST_LIBRARY_VERSION} (pipeline_code/core/images.py): move both together")


def test_the_installed_xgboost_is_the_containers():
    xgboost = pytest.importorskip("xgboost")
    assert xgboost.__version__ == images.XGBOOST_LIBRARY_VERSION


def test_the_configured_image_has_an_end_of_patch_date():
    """A new image version comes with its row of the support policy, or synth warns about it forever."""
    assert images.XGBOOST_IMAGE_VERSION in images.END_OF_PATCH


def test_no_warning_while_the_image_is_patched_for_more_than_the_notice():
    eop = images.END_OF_PATCH[images.XGBOOST_IMAGE_VERSION]
    day_before_notice = eop - datetime.timedelta(days=images.END_OF_PATCH_NOTICE_DAYS + 1)
    assert images.end_of_patch_warning(day_before_notice) is None


def test_a_warning_ahead_of_the_end_of_patch():
    today = datetime.date(2027, 3, 1)
    assert images.end_of_patch_warning(today, "3.2-0") == (
        "the SageMaker XGBoost image 3.2-0 that every job and endpoint runs reaches its end of patch on 2027-05-13 "
        "(in 73 days; AWS Deep Learning Containers support policy), after which it gets no security patches: move "
        "XGBOOST_IMAGE_VERSION in pipeline_code/core/images.py to a supported version (docs/training.md, The XGBoost "
        "image and its end of patch)")


@pytest.mark.parametrize("today", [datetime.date(2026, 11, 17), datetime.date(2026, 12, 7)])
def test_a_warning_once_the_end_of_patch_is_reached(today):
    assert images.end_of_patch_warning(today, "3.0-5") == (
        "the SageMaker XGBoost image 3.0-5 that every job and endpoint runs passed its end of patch on 2026-11-17 "
        "(AWS Deep Learning Containers support policy): it gets no security patches; move XGBOOST_IMAGE_VERSION in "
        "pipeline_code/core/images.py to a supported version (docs/training.md, The XGBoost image and its end of patch)")


def test_a_warning_for_a_version_without_a_date():
    assert images.end_of_patch_warning(datetime.date(2026, 12, 7), "9.9-9") == (
        "the SageMaker XGBoost image 9.9-9 has no end-of-patch date in pipeline_code/core/images.py END_OF_PATCH: add "
        "its row from the AWS Deep Learning Containers support policy (docs/training.md, The XGBoost image and its end "
        "of patch)")


def test_the_documentation_names_the_image_and_its_end_of_patch():
    """The page every warning points to says which image runs and until when it is patched."""
    text = docs.section("## The XGBoost image and its end of patch").text
    assert f"`{images.XGBOOST_IMAGE_REPOSITORY}:{images.XGBOOST_IMAGE_VERSION}`" in text
    assert f"end of patch {images.END_OF_PATCH[images.XGBOOST_IMAGE_VERSION].isoformat()}" in text
    assert f"Python {'.'.join(map(str, images.XGBOOST_IMAGE_PYTHON))}, XGBoost {images.XGBOOST_LIBRARY_VERSION}" in text


@pytest.mark.parametrize("uri, tag", [
    ("141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5", "3.0-5"),
    ("141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost@sha256:" + "a" * 64, None),
    ("763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference-neuronx:2.9.0-neuronx-py312", None),
    ("", None),
])
def test_the_tag_of_an_xgboost_image_uri(uri, tag):
    assert images.xgboost_image_tag(uri) == tag


def test_a_version_of_an_older_image_not_yet_past_its_end_of_patch_or_without_a_date_is_named_without_the_warning():
    registry = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost"
    current = images.XGBOOST_IMAGE_VERSION
    assert images.registered_image_note(f"{registry}:3.0-5", datetime.date(2026, 11, 16)) == (
        f"serves in the image it was registered with, sagemaker-xgboost:3.0-5, not the app's {current} (docs/training.md, "
        "The XGBoost image and its end of patch)")
    assert images.registered_image_note(f"{registry}:1.7-1", datetime.date(2026, 12, 7)) == (
        f"serves in the image it was registered with, sagemaker-xgboost:1.7-1, not the app's {current} (docs/training.md, "
        "The XGBoost image and its end of patch)")
    assert images.registered_image_note(f"{registry}:{current}", datetime.date(2030, 1, 1)) is None
    assert images.registered_image_note(None, datetime.date(2026, 12, 7)) is None


# The image named by tag in prose: ``sagemaker-xgboost:3.2-0``, ``sagemaker-xgboost 3.2-0``, ``XGBoost 3.2-0 image``.
_NAMED_TAG = re.compile(r"sagemaker-xgboost[: ](\d+\.\d+-\d+)|XGBoost (?:image )?(\d+\.\d+-\d+)")


def test_the_documentation_and_the_code_name_no_other_image_than_the_one_definition():
    """GIVEN the image moves (XGBOOST_IMAGE_VERSION) THEN no page, docstring or message still names the old tag as the
    one the app runs: each names images.py's, or leaves the tag to it. (A page may tell history with a bare tag, as
    docs/training.md does; tests' fixtures name any tag, a version registered long ago among them.)"""
    texts = [(p.name, p.text) for p in docs.documents()]
    for root in ("pipeline_code", "mlops_loop", "mlops_cli"):
        texts += [(p.relative_to(REPO_ROOT).as_posix(), p.read_text()) for p in sorted((REPO_ROOT / root).rglob("*.py"))
                  if p != REPO_ROOT / "pipeline_code" / "core" / "images.py"]
    texts.append(("app.py", (REPO_ROOT / "app.py").read_text()))
    stale = [f"{name}: {match.group(0)}" for name, text in texts for match in _NAMED_TAG.finditer(text)
             if (match.group(1) or match.group(2)) != images.XGBOOST_IMAGE_VERSION]
    assert stale == [], f"name {images.XGBOOST_IMAGE_VERSION} (pipeline_code/core/images.py) or no tag"
