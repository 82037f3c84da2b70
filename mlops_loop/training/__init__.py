"""Training pipeline definition: the SageMaker Pipeline of a model, generated offline.

Pure definition generation (no AWS CDK, no AWS calls): the CDK construct that creates the
``AWS::SageMaker::Pipeline`` calls :func:`build_pipeline_definition` with a
:class:`PipelineSpec` and embeds the returned JSON (kept in :mod:`.sdk_cache`;
:func:`generate_pipeline_definition` always runs the SDK).
"""

from .definition import build_pipeline_definition, generate_pipeline_definition, step_graph
from .sdk_offline import OfflineViolation, offline_sdk
from .spec import PipelineSpec

__all__ = [
    "OfflineViolation",
    "PipelineSpec",
    "build_pipeline_definition",
    "generate_pipeline_definition",
    "offline_sdk",
    "step_graph",
]
