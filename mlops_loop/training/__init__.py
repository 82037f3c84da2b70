"""Training pipeline definition: the SageMaker Pipeline of a model, generated offline.

Pure definition generation (no AWS CDK, no AWS calls): the CDK construct that creates the
``AWS::SageMaker::Pipeline`` calls :func:`pipeline_definition_later` with a
:class:`PipelineSpec` and embeds the JSON it gives (kept in :mod:`.sdk_cache`, generated meanwhile by
:mod:`.sdk_helper` on a cold synth; :func:`build_pipeline_definition` waits for it,
:func:`generate_pipeline_definition` always runs the SDK).
"""

from .definition import build_pipeline_definition, generate_pipeline_definition, pipeline_definition_later, step_graph
from .sdk_offline import OfflineViolation, offline_sdk
from .spec import PipelineSpec

__all__ = [
    "OfflineViolation",
    "PipelineSpec",
    "build_pipeline_definition",
    "generate_pipeline_definition",
    "offline_sdk",
    "pipeline_definition_later",
    "step_graph",
]
