"""The stock SageMaker XGBoost image every XGBoost job and endpoint of the app runs in: its one definition.

Prepare, Train, Evaluate, Baseline and ModelCard, the drift monitor, every model served on a CPU or GPU (a
network too, scored with numpy) and every multi-model endpoint run ``sagemaker-xgboost:<XGBOOST_IMAGE_VERSION>``
(``mlops_loop/training/names.py`` ``XGBOOST_VERSION`` and the instance-type table's labels are this), and the
tests and the local run train with the same XGBoost (``requirements-dev.txt``; tests/core/test_images.py holds
them together). Synth warns near and past the image's end of patch (:func:`end_of_patch_warning`, app.py).
Moving the image: docs/training.md, "The XGBoost image and its end of patch".

Standard library only.
"""

from __future__ import annotations

import datetime
from typing import Optional

XGBOOST_IMAGE_REPOSITORY = "sagemaker-xgboost"
# The image's tag, the SageMaker SDK's framework version (sagemaker.core image_uri_config/xgboost.json).
XGBOOST_IMAGE_VERSION = "3.2-0"
# What that image holds (aws/deep-learning-containers docker/xgboost/Dockerfile and pyproject.toml, 2026-08-21:
# Amazon Linux 2023, Python 3.12 in /opt/venv, xgboost 3.2.0, sagemaker-containers 2.8.6.post2,
# sagemaker-inference 1.5.5, gunicorn 25.3.0, Flask 3.1.3). Job code must run in its Python.
XGBOOST_LIBRARY_VERSION = "3.2.0"
XGBOOST_IMAGE_PYTHON = (3, 12)
# The Python of Lambda's managed runtime the handlers (pipeline_code/handlers) run on: no image, but the same question
# of what the code runs in. mlops_loop/constructs/handler_function.py sets the runtime from it; tests/training/
# test_compat.py checks the handler code against its standard library and holds every doc line naming it to it.
HANDLER_PYTHON = (3, 14)

# End of patch of each SageMaker XGBoost image version: the AWS Deep Learning Containers "Framework Support Policy"
# (https://aws.github.io/deep-learning-containers/reference/support_policy; its rows come from aws/deep-learning-
# containers docs/src/data/sagemaker-xgboost/<version>-cpu-sagemaker.yml). After it the tag gets no security
# patches. 3.0-5: GA 2025-11-17, EOP 2026-11-17; 3.2-0: GA 2026-05-13, EOP 2027-05-13 (read 2026-12-07).
END_OF_PATCH = {
    "3.0-5": datetime.date(2026, 11, 17),
    "3.2-0": datetime.date(2027, 5, 13),
}
# How long before the end of patch synth starts saying so: time to move, retrain and approve in every environment.
END_OF_PATCH_NOTICE_DAYS = 90

_MOVE = "move XGBOOST_IMAGE_VERSION in pipeline_code/core/images.py to a supported version"
_DOCS = "docs/training.md, The XGBoost image and its end of patch"


def xgboost_image_label(version: str = XGBOOST_IMAGE_VERSION) -> str:
    """The image as messages and the instance-type table name it: ``sagemaker-xgboost 3.2-0``."""
    return f"{XGBOOST_IMAGE_REPOSITORY} {version}"


def end_of_patch_warning(today: datetime.date, version: str = XGBOOST_IMAGE_VERSION) -> Optional[str]:
    """One line when the XGBoost image ``version`` is within :data:`END_OF_PATCH_NOTICE_DAYS` of its end of patch on
    ``today``, past it, or has no date in :data:`END_OF_PATCH`; None otherwise. A warning, not a refusal: an image past
    its end of patch still runs."""
    eop = END_OF_PATCH.get(version)
    if eop is None:
        return (f"the SageMaker XGBoost image {version} has no end-of-patch date in pipeline_code/core/images.py "
                f"END_OF_PATCH: add its row from the AWS Deep Learning Containers support policy ({_DOCS})")
    what = f"the SageMaker XGBoost image {version} that every job and endpoint runs"
    if today >= eop:
        return (f"{what} passed its end of patch on {eop.isoformat()} (AWS Deep Learning Containers support policy): "
                f"it gets no security patches; {_MOVE} ({_DOCS})")
    days = (eop - today).days
    if days <= END_OF_PATCH_NOTICE_DAYS:
        return (f"{what} reaches its end of patch on {eop.isoformat()} (in {days} days; AWS Deep Learning Containers "
                f"support policy), after which it gets no security patches: {_MOVE} ({_DOCS})")
    return None


def xgboost_image_tag(image_uri: str) -> Optional[str]:
    """The tag of ``image_uri`` when it names the SageMaker XGBoost image by tag (``<registry>/sagemaker-xgboost:3.0-5``),
    else None (another image, or one named by digest)."""
    path, colon, tag = image_uri.rpartition(":")
    if not colon or "/" in tag or path.rsplit("/", 1)[-1] != XGBOOST_IMAGE_REPOSITORY:
        return None
    return tag


def registered_image_note(image_uri: Optional[str], today: datetime.date) -> Optional[str]:
    """What deploying a model version registered with ``image_uri`` means when that is an XGBoost image of another tag
    than the app's (a version trained before the app moved): it serves in its own image (the SageMaker Model is made
    from its package), unpatched once that image's end of patch is past on ``today``. None for the app's image or
    another image."""
    tag = xgboost_image_tag(image_uri or "")
    if tag is None or tag == XGBOOST_IMAGE_VERSION:
        return None
    eop = END_OF_PATCH.get(tag)
    past = (f"; that image passed its end of patch on {eop.isoformat()} and gets no security patches"
            if eop is not None and today >= eop else "")
    return (f"serves in the image it was registered with, {XGBOOST_IMAGE_REPOSITORY}:{tag}, not the app's "
            f"{XGBOOST_IMAGE_VERSION}{past} ({_DOCS})")
