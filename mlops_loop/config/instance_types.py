"""The SageMaker and Glue capacity mlops-loop knows how to size.

One table, used to validate configuration at synth time (an unknown instance type
fails synth with the list of allowed ones) and, later, to estimate the always-on
cost floor. Prices are approximate public on-demand list prices in us-east-1 (USD
per hour) kept for estimates only; they are not used for any decision at deploy time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline_code.core.frameworks import PYTORCH, XGBOOST
from pipeline_code.core.images import xgboost_image_label

Accelerator = Literal["none", "gpu", "inferentia2", "trainium"]


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: int
    accelerator: Accelerator
    usd_per_hour: float
    # Whether the type has local NVMe instance storage: SageMaker rejects a KmsKeyId for
    # the storage volume on such types, so constructs must omit it.
    local_nvme: bool = False
    # NeuronCores of a Neuron type (two per Inferentia2 or Trainium chip). Inferentia2: a compiled model's endpoint
    # runs one serving worker per core, each pinned to one (the Neuron runtime otherwise gives the first process every
    # core). Trainium: the network's trainer is one process on one core, so a type with more cores than the smallest
    # Trainium type is refused (cross_checks.training_problems).
    neuron_cores: int = 0


_TYPES = (
    InstanceType("ml.t3.medium", 2, 4, "none", 0.05),
    InstanceType("ml.t3.large", 2, 8, "none", 0.10),
    InstanceType("ml.m5.large", 2, 8, "none", 0.115),
    InstanceType("ml.m5.xlarge", 4, 16, "none", 0.23),
    InstanceType("ml.m5.2xlarge", 8, 32, "none", 0.461),
    InstanceType("ml.m5.4xlarge", 16, 64, "none", 0.922),
    InstanceType("ml.m6i.large", 2, 8, "none", 0.115),
    InstanceType("ml.m6i.xlarge", 4, 16, "none", 0.23),
    InstanceType("ml.m6i.2xlarge", 8, 32, "none", 0.461),
    InstanceType("ml.c5.xlarge", 4, 8, "none", 0.204),
    InstanceType("ml.c5.2xlarge", 8, 16, "none", 0.408),
    InstanceType("ml.c6i.xlarge", 4, 8, "none", 0.204),
    InstanceType("ml.r5.xlarge", 4, 32, "none", 0.302),
    InstanceType("ml.r5.2xlarge", 8, 64, "none", 0.605),
    InstanceType("ml.m5d.xlarge", 4, 16, "none", 0.271, local_nvme=True),
    InstanceType("ml.g5.xlarge", 4, 16, "gpu", 1.408, local_nvme=True),
    InstanceType("ml.g5.2xlarge", 8, 32, "gpu", 1.515, local_nvme=True),
    # One Inferentia2 chip each (AWS, "Amazon EC2 Inf2 instances"): two NeuronCores.
    InstanceType("ml.inf2.xlarge", 4, 16, "inferentia2", 0.99, neuron_cores=2),
    InstanceType("ml.inf2.8xlarge", 32, 128, "inferentia2", 2.36, neuron_cores=2),
    # Every trn1 size has local NVMe (ml.trn1.2xlarge: one 474 GB disk); the SageMaker SDK treats the whole
    # trn1/trn2 family as having no EBS volume and no volume KMS key (common_utils.volume_size_supported,
    # instance_supports_kms).
    # AWS, "Amazon EC2 Trn1 instances": ml.trn1.2xlarge one Trainium chip (2 NeuronCores), ml.trn1.32xlarge 16 (32).
    InstanceType("ml.trn1.2xlarge", 8, 32, "trainium", 1.5, local_nvme=True, neuron_cores=2),
    InstanceType("ml.trn1.32xlarge", 128, 512, "trainium", 24.78, local_nvme=True, neuron_cores=32),
)

INSTANCE_TYPES: dict[str, InstanceType] = {t.name: t for t in _TYPES}

# Types of the table that a SageMaker API does not take: not in its instance-type enum (botocore's SageMaker
# service model: TrainingInstanceType, ProcessingInstanceType, ProductionVariantInstanceType for endpoints,
# TransformInstanceType for batch transform). Such a job or endpoint would fail at run or deploy time.
UNSUPPORTED_FOR: dict[str, frozenset[str]] = {
    "training jobs": frozenset({"ml.m5d.xlarge", "ml.inf2.xlarge", "ml.inf2.8xlarge"}),
    "processing jobs": frozenset({"ml.m5d.xlarge", "ml.inf2.xlarge", "ml.inf2.8xlarge", "ml.trn1.2xlarge",
                                  "ml.trn1.32xlarge"}),
    "endpoints": frozenset({"ml.t3.medium", "ml.t3.large"}),
    "batch transform": frozenset({"ml.t3.medium", "ml.t3.large", "ml.r5.xlarge", "ml.r5.2xlarge", "ml.m5d.xlarge"}),
}

# Where each SageMaker create request (and a pipeline step's Arguments, which are its job's request) names what its
# job runs on: the path to the member holding InstanceType and InstanceCount. From the request shapes of botocore's
# SageMaker service model (tests/infra/test_job_resources.py holds each to it): CreateProcessingJobRequest's
# ProcessingResources.ClusterConfig, CreateTransformJobRequest's TransformResources, CreateTrainingJobRequest's
# ResourceConfig, CreateHyperParameterTuningJobRequest's TrainingJobDefinition.ResourceConfig (every training job the
# tuning job starts; its TrainingJobDefinition may give HyperParameterTuningResourceConfig, a choice of types, instead).
JOB_RESOURCES: dict[str, tuple[str, ...]] = {
    "CreateProcessingJob": ("ProcessingResources", "ClusterConfig"),
    "CreateTransformJob": ("TransformResources",),
    "CreateTrainingJob": ("ResourceConfig",),
    "CreateHyperParameterTuningJob": ("TrainingJobDefinition", "ResourceConfig"),
}


def unknown_problem(name: str) -> str:
    """The problem with an instance type this table lacks: the table is the project's, so a real type it lacks
    (a newer family, say) is added here, with the facts synth checks."""
    return (f"unknown instance type {name!r}; allowed: {', '.join(sorted(INSTANCE_TYPES))} (the types "
            "mlops_loop/config/instance_types.py describes; add a missing one there)")


def unsupported_problem(name: str, purpose: str) -> str:
    """Why ``name`` cannot run ``purpose`` (a key of :data:`UNSUPPORTED_FOR`); "" when it can.

    For a model's types (training jobs, endpoints, batch transform) the types offered are those some framework uses
    there, grouped by accelerator with the frameworks that use it: never one the config would refuse or warn about for
    every framework (a GPU serves no framework's model, Trainium serves none, Inferentia2 only the network's)."""
    if name not in UNSUPPORTED_FOR[purpose]:
        return ""
    if purpose == "processing jobs":
        return f"{name} cannot run SageMaker {purpose}; allowed: {', '.join(_allowed(purpose))}"
    groups = []
    for accelerator in _ACCELERATOR_NAMES:
        types = [t for t in _allowed(purpose) if INSTANCE_TYPES[t].accelerator == accelerator]
        users = [f for f, spec in FRAMEWORKS.items() if accelerator in _uses(spec, purpose)]
        if types and users:
            who = ("any framework" if len(users) == len(FRAMEWORKS)
                   else f"framework{'s' if len(users) > 1 else ''} {', '.join(repr(u) for u in users)} only")
            groups.append(f"{', '.join(types)} ({_ACCELERATOR_NAMES[accelerator]}, {who})")
    return f"{name} cannot run SageMaker {purpose}; allowed: {'; '.join(groups)}"


# The accelerators, in the order an 'allowed:' list groups their types.
_ACCELERATOR_NAMES = {"none": "CPU", "gpu": "GPU", "inferentia2": "Inferentia2", "trainium": "Trainium"}


def _uses(framework: "Framework", purpose: str) -> tuple[str, ...]:
    """The accelerators ``framework`` runs ``purpose`` on, refused or warned about on none of them."""
    if purpose == "training jobs":
        return framework.training_accelerators
    return tuple(a for a in framework.serving_accelerators if a not in framework.serving_idle)


def _allowed(purpose: str) -> list[str]:
    """The types that run ``purpose`` here: for processing jobs, none with local NVMe (see :func:`volume_key_problem`)."""
    return sorted(t for t, i in INSTANCE_TYPES.items()
                  if t not in UNSUPPORTED_FOR[purpose] and not (purpose == "processing jobs" and i.local_nvme))


def volume_key_problem(name: str) -> str:
    """Why ``name`` cannot run this app's processing jobs, which all set a volume KMS key; "" when it can."""
    if name not in INSTANCE_TYPES or not INSTANCE_TYPES[name].local_nvme:
        return ""
    return (f"{name} has local NVMe storage, and SageMaker rejects the volume KMS key every processing job sets; "
            f"allowed: {', '.join(_allowed('processing jobs'))}")


# For messages: "ml.inf2.xlarge is an Inferentia2 instance".
ACCELERATOR_LABELS: dict[str, str] = {"none": "a CPU", "gpu": "a GPU", "inferentia2": "an Inferentia2", "trainium": "a Trainium"}


@dataclass(frozen=True)
class Framework:
    """What trains a model of a framework (``image``), what serves it (``serving_image``) and on which accelerators."""

    image: str
    serving_image: str
    training_accelerators: tuple[Accelerator, ...]
    serving_accelerators: tuple[Accelerator, ...]
    why_not: dict
    suggested: dict
    # Accelerators the model is served on but does not use: accepted with a synth warning, not refused (a deployment
    # made when they were allowed must keep synthesizing; an autoscaled endpoint cannot change type in place).
    serving_idle: tuple[Accelerator, ...] = ()


# Neuron devices need models compiled with the Neuron SDK and a Neuron image (e.g. the PyTorch
# NeuronX DLCs); a framework joins the Inferentia2/Trainium lists only with such an image.
FRAMEWORKS: dict[str, Framework] = {
    XGBOOST: Framework(
        image=xgboost_image_label(),
        serving_image=xgboost_image_label(),
        training_accelerators=("none", "gpu"),
        # Training uses a GPU (train.py --device auto); serving does not: the hooks load the trees as a CPU booster.
        serving_accelerators=("none",),
        why_not={
            "gpu": "the serving hooks score the trees on the CPU, so the GPU would be paid for and idle",
            "inferentia2": "Inferentia2 runs only Neuron-compiled models from a Neuron image; the XGBoost image has no Neuron support",
            "trainium": "Trainium runs only Neuron SDK training code; the XGBoost image has no Neuron support",
        },
        suggested={"training": "ml.m5.xlarge or ml.g5.xlarge", "serving": "ml.m5.large or ml.c5.xlarge"},
        serving_idle=("gpu",),
    ),
    # The tabular network (pipeline_code/training/train_torch.py): trains on CPU, CUDA or a Trainium XLA
    # device; served from its portable numpy form on a CPU, or on Inferentia2 from the form the pipeline's
    # Compile step builds (pipeline_code/training/compile_neuron.py), in AWS's Neuron inference image.
    PYTORCH: Framework(
        image="pytorch-training 2.9 (CPU/GPU), pytorch-training-neuronx 2.9 (Trainium)",
        # The portable network needs only numpy: the XGBoost image serves it with the same hooks on a CPU (so a
        # multi-model endpoint may mix it with trees). On ml.inf2 it is AWS's Neuron inference image instead.
        serving_image=xgboost_image_label(),
        training_accelerators=("none", "gpu", "trainium"),
        serving_accelerators=("none", "inferentia2"),
        why_not={
            "gpu": "the network is served from its numpy form or its Neuron-compiled form, neither of which uses a GPU",
            "trainium": "Trainium trains the network; the Compile step builds it for Inferentia2 (torch-neuronx --target "
                        "inf2), which is what serves it on Neuron",
        },
        suggested={"training": "ml.m5.xlarge or ml.trn1.2xlarge", "serving": "ml.m5.large, ml.c5.xlarge or ml.inf2.xlarge"},
    ),
}

# Regions of the supported list where AWS publishes its Neuron Deep Learning Containers (the network's
# Trainium training image and its Inferentia2 inference image): the "Neuron Container" column of aws/deep-learning-containers
# available_images.md (master, last changed 2026-02-09). Not in it: us-west-1, ca-central-1, eu-west-2,
# eu-north-1, eu-south-1, ap-northeast-2.
NEURON_IMAGE_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-west-3",
    "eu-central-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
)

# Commercial regions where SageMaker Feature Store, Pipelines and Glue 5.0 are all available.
SUPPORTED_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
)
