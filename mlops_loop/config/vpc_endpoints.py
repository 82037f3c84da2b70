"""The VPC endpoints an environment with ``network`` needs in its subnets, which the app does not create (docs/vpc.md,
"Running inside your VPC", whose endpoint table lists exactly these: tests/infra/test_network_environment.py checks
the table against this list, and the cost floor prices the interface endpoints from it)."""

from __future__ import annotations

# Endpoint service (``com.amazonaws.<region>.<service>``) -> endpoint type, in the order of the table in docs/vpc.md.
VPC_ENDPOINT_SERVICES: dict[str, str] = {
    "s3": "Gateway",
    "sts": "Interface",
    "sagemaker.api": "Interface",
    "sagemaker.runtime": "Interface",
    "sagemaker.featurestore-runtime": "Interface",
    "logs": "Interface",
    "monitoring": "Interface",
    "kms": "Interface",
    "ecr.api": "Interface",
    "ecr.dkr": "Interface",
    "glue": "Interface",
    "cloudformation": "Interface",
    "sns": "Interface",
    "scheduler": "Interface",
    "ssm": "Interface",
}

# The interface endpoints among them: billed per endpoint and Availability Zone hour (a gateway endpoint is free).
INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = tuple(
    service for service, kind in VPC_ENDPOINT_SERVICES.items() if kind == "Interface"
)
