"""Which SageMaker instance types each region offers, for training, processing and hosting.

The table (``instance_offers.json`` beside this module) is made from AWS's own list: the on-demand hourly
rows of the AWS Price List offer file of ``AmazonSageMaker`` for each region, whose ``Component`` column says
what a type is offered for (``Training``, ``Processing``, ``Hosting``). AWS's developer guide sends readers to
SageMaker's pricing, which is built from that list, for "the instance types that are available in each Region".
``python -m mlops_cli.instance_offers`` makes the table from the offer files and records, per region, the
file's URL, version, publication date and sha256.

A region the table holds is checked at synth: every instance type an environment there would train, process or
host on (config and generated pipeline definitions) must be offered for that use, or synth fails with one line
naming the field, the use, the region and what is offered. A region the table does not hold is not checked, and
batch transform is not checked (the offer file's component for it is not pinned down here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

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

    def problem(self, use: str, instance_type: str, known: Optional[frozenset[str]] = None) -> str:
        """Why ``instance_type`` cannot run ``use`` here ("" when it can); the types offered that this app knows
        (``known``, all of them by default) are listed as the way out."""
        offered = self.types[use]
        if instance_type in offered:
            return ""
        choices = sorted(offered & known if known is not None else offered)
        return (f"{instance_type} is not offered for {use} in {self.region}; offered: "
                f"{', '.join(choices) or 'none of the types this app sizes'} "
                f"(AWS Price List {self.offer_version}, published {self.publication_date})")


def parse_offers(document: Mapping[str, Any], source: str = "instance offers") -> dict[str, RegionOffers]:
    """The regions of a table document (as :func:`load_offers` reads it), checked for shape.

    Raises:
        ValueError: a region entry misses a field or a use, naming ``source`` and the region.
    """
    regions = document.get("regions")
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
def load_offers(path: Path = OFFERS_PATH) -> dict[str, RegionOffers]:
    """The table at ``path`` (the shipped one by default), by region."""
    return parse_offers(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def definition_instance_types(definition: str) -> Iterator[tuple[str, str, str]]:
    """(where, use, instance type) of every literal instance type a SageMaker pipeline definition (JSON text) runs:
    its parameters' defaults (``TrainingInstanceType``, ``ProcessingInstanceType``, ...) and any literal type in a
    step's training or processing resources. Types taken from a parameter are the parameter's."""
    body = json.loads(definition)
    for parameter in body.get("Parameters", []):
        name, default = parameter.get("Name", ""), parameter.get("DefaultValue")
        if name.endswith("InstanceType") and isinstance(default, str):
            use = "training" if "Training" in name else "processing" if "Processing" in name else None
            if use:
                yield f"parameter {name}", use, default

    def walk(node: Any, step: str, use: Optional[str]) -> Iterator[tuple[str, str, str]]:
        if isinstance(node, dict):
            if "Name" in node and "Type" in node:  # a step (also one inside a condition step's branches)
                step = node["Name"]
            for key, value in node.items():
                if key == "InstanceType" and isinstance(value, str) and use:
                    yield f"step {step}", use, value
                # A transform step's resources are not checked (see the module docstring).
                inner = {"ResourceConfig": "training", "ProcessingResources": "processing", "TransformResources": None}
                yield from walk(value, step, inner[key] if key in inner else use)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value, step, use)

    yield from walk(body.get("Steps", []), "?", None)
