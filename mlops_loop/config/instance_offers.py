"""Which SageMaker instance types each region offers, for training, processing and hosting.

The table (``instance_offers.json`` beside this module) is made from AWS's own list: the on-demand hourly
rows of the AWS Price List offer file of ``AmazonSageMaker`` for each region, whose ``Component`` column says
what a type is offered for (``Training``, ``Processing``, ``Hosting``). SageMaker's developer guide points to
its pricing page, which shows that list, for the instance types available in each region
(https://docs.aws.amazon.com/sagemaker/latest/dg/regions-quotas.html). ``python -m mlops_cli.instance_offers``
makes the table from the offer files and records, per region, the file's version, publication date, sha256 and
the versioned URL derived from its version.

The table ships without regions (the list cannot be downloaded from this project's machines), so until it is
made nothing is checked. A region the table holds is checked at synth: every instance type an environment there
would train, process or host on (config and generated pipeline definitions) must be offered for that use, or
synth fails with one line naming the field, the use, the region and what is offered. A region the table does not
hold is not checked, and batch transform is not checked (the offer file's component for it is not pinned down).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping, Optional

from .instance_types import INSTANCE_TYPES, JOB_RESOURCES

OFFERS_PATH = Path(__file__).with_name("instance_offers.json")
# Use (as messages name it) -> the Price List's Component value.
USES: Mapping[str, str] = {"training": "Training", "processing": "Processing", "hosting": "Hosting"}


@dataclass(frozen=True)
class RegionOffers:
    """One region's offer file, reduced to the instance types offered per use."""

    region: str
    source: str
    offer_version: str
    publication_date: str
    sha256: str
    types: Mapping[str, frozenset[str]]  # use -> instance types

    def problem(self, use: str, instance_type: str) -> str:
        """Why ``instance_type`` cannot run ``use`` here ("" when it can); the offered types this app sizes
        (:data:`.instance_types.INSTANCE_TYPES`) are listed as the way out."""
        offered = self.types[use]
        if instance_type in offered:
            return ""
        choices = sorted(offered & INSTANCE_TYPES.keys())
        return (f"{instance_type} is not offered for {use} in {self.region}; offered: "
                f"{', '.join(choices) or 'none of the types this app sizes'} "
                f"(AWS Price List {self.offer_version}, published {self.publication_date})")


def parse_offers(document: Mapping[str, Any], source: str = "instance offers") -> dict[str, RegionOffers]:
    """The regions of a table document (as :func:`load_offers` reads it), checked for shape.

    Raises:
        ValueError: a region entry misses a field or a use, naming ``source`` and the region.
    """
    regions = document.get("regions") if isinstance(document, Mapping) else None
    if not isinstance(regions, dict):
        raise ValueError(f"{source}: 'regions' must be a mapping of region -> offers")
    offers = {}
    for region, entry in regions.items():
        missing = [k for k in ("source", "offer_version", "publication_date", "sha256", *USES) if k not in entry]
        if missing:
            raise ValueError(f"{source}: region {region!r}: missing {', '.join(missing)}")
        offers[region] = RegionOffers(
            region=region, source=entry["source"], offer_version=entry["offer_version"],
            publication_date=entry["publication_date"], sha256=entry["sha256"],
            types={use: frozenset(entry[use]) for use in USES},
        )
    return offers


@lru_cache(maxsize=None)
def load_offers() -> Mapping[str, RegionOffers]:
    """The shipped table (:data:`OFFERS_PATH`), by region; read once, shared read-only."""
    return MappingProxyType(parse_offers(json.loads(OFFERS_PATH.read_text(encoding="utf-8")), source=str(OFFERS_PATH)))


def definition_instance_types(definition: str) -> Iterator[tuple[str, str, str]]:
    """(where, use, instance type) of every instance type a SageMaker pipeline definition (JSON text) runs a training
    or processing job on: a literal type, or the default of the parameter a step takes it from (``{"Get":
    "Parameters.ProcessingInstanceType"}``), each with the use of the place it is given (a training job's or a
    tuning job's resources, a processing job's cluster); a parameter once per use, however many steps take it.
    Transform resources are not listed (see the module docstring); a parameter no step uses is not either."""
    body = json.loads(definition)
    defaults = {p.get("Name"): p.get("DefaultValue") for p in body.get("Parameters", [])}
    # All beneath the first member of a job's resources path runs as that job (a tuning job's TrainingJobDefinition).
    job_uses = {"CreateTrainingJob": "training", "CreateHyperParameterTuningJob": "training",
                "CreateProcessingJob": "processing"}
    uses = {path[0]: job_uses.get(api) for api, path in JOB_RESOURCES.items()}
    uses["TrainingJobDefinitions"] = "training"  # a tuning job of several algorithms: one definition each

    def walk(node: Any, step: str, use: Optional[str]) -> Iterator[tuple[str, str, str]]:
        if isinstance(node, dict):
            if "Name" in node and "Type" in node:  # a step (also one inside a condition step's branches)
                step = node["Name"]
            for key, value in node.items():
                if key == "InstanceType" and use:
                    if isinstance(value, str):
                        yield f"step {step}", use, value
                    elif isinstance(value, dict) and str(value.get("Get", "")).startswith("Parameters."):
                        name = value["Get"].split(".", 1)[1]
                        if isinstance(defaults.get(name), str):
                            yield f"parameter {name}", use, defaults[name]
                yield from walk(value, step, uses[key] if key in uses else use)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value, step, use)

    yield from dict.fromkeys(walk(body.get("Steps", []), "?", None))
