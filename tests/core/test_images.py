"""The stock SageMaker XGBoost image: one definition (``pipeline_code.core.images``) that the pipeline definition,
the instance-type table, the local XGBoost pin and the documentation follow."""

from __future__ import annotations

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


def test_the_documentation_names_the_image_and_its_end_of_patch():
    """The page every warning points to says which image runs and until when it is patched."""
    text = docs.section("## The XGBoost image and its end of patch").text
    assert f"`{images.XGBOOST_IMAGE_REPOSITORY}:{images.XGBOOST_IMAGE_VERSION}`" in text
    assert f"end of patch {images.END_OF_PATCH[images.XGBOOST_IMAGE_VERSION].isoformat()}" in text
    assert f"Python {'.'.join(map(str, images.XGBOOST_IMAGE_PYTHON))}, XGBoost {images.XGBOOST_LIBRARY_VERSION}" in text
