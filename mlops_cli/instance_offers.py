"""Make the table of the SageMaker instance types each region offers, from AWS's Price List.

    python -m mlops_cli.instance_offers --region eu-west-1 --region us-east-1 [--from DIR] [--out PATH]

For each region this reads the AWS Price List offer file of ``AmazonSageMaker`` (CSV): from ``DIR/<region>.csv``
or ``DIR/<region>/index.csv`` with ``--from`` (downloaded wherever the internet is reachable), else from
``https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/current/<region>/index.csv``. It keeps
the on-demand hourly rows (``TermType`` OnDemand, ``Unit`` Hrs) whose ``Component`` is Training, Processing or
Hosting, and writes, per region, the instance types offered for each use with the file's version, publication
date and sha256, and the URL of that version (derived from it), into ``mlops_loop/config/instance_offers.json``
(other regions there are kept; nothing is written when a region fails). Synth then checks every environment in
those regions (``mlops_loop.config.instance_offers``). Review the diff and commit it: the table is a dated fact
about AWS, so it changes only when someone re-reads the list.

Exit 0 when written; 2 with one line saying why when a file cannot be read or is not what it should be.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import http.client
import json
import re
import sys
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from mlops_loop.config.instance_offers import OFFERS_PATH, USES, parse_offers
from mlops_loop.config.instance_types import SUPPORTED_REGIONS

OFFER_URL = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/{version}/{region}/index.csv"
# The offer CSV opens with "key","value" rows (FormatVersion, Disclaimer, Publication Date, Version, OfferCode),
# then the header, then one row per price.
REQUIRED_COLUMNS = ("TermType", "Unit", "Component", "Instance Name", "usageType")
COMPONENTS = {component: use for use, component in USES.items()}
INSTANCE_NAME = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")


class OfferFileError(ValueError):
    """An offer file that cannot be used, with the region and what is wrong."""


def region_entry(region: str, data: bytes) -> dict[str, Any]:
    """The table entry of ``region`` from its offer file's bytes.

    Raises:
        OfferFileError: not an AmazonSageMaker offer file (CSV with its preamble, header and columns), or no
            on-demand hourly rows for a use, or rows of another region.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise OfferFileError(f"region {region}: the offer file is not UTF-8 text ({error.reason} at byte {error.start})") from None
    rows = csv.reader(io.StringIO(text))
    # "key","value" rows until the header, which starts with the SKU column.
    preamble: dict[str, str] = {}
    header: list[str] = []
    for row in rows:
        if row[:1] == ["SKU"]:
            header = row
            break
        if len(row) == 2:
            preamble[row[0]] = row[1]
    offer_code, version, published = (preamble.get(k) for k in ("OfferCode", "Version", "Publication Date"))
    if not (offer_code and version and published and header):
        raise OfferFileError(f"region {region}: no 'OfferCode', 'Version' and 'Publication Date' rows before a header "
                             "starting with SKU; is it an AWS Price List offer file (CSV)?")
    if offer_code != "AmazonSageMaker":
        raise OfferFileError(f"region {region}: the offer file is for {offer_code}, not AmazonSageMaker")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise OfferFileError(f"region {region}: the offer file has no {', '.join(missing)} column")
    types: dict[str, set[str]] = {use: set() for use in USES}
    for row in rows:
        cell = dict(zip(header, row))
        use = COMPONENTS.get(cell.get("Component", ""))
        if use is None or cell.get("TermType") != "OnDemand" or cell.get("Unit") != "Hrs":
            continue
        if cell.get("Region Code") and cell["Region Code"] != region:
            raise OfferFileError(f"region {region}: the file lists prices for {cell['Region Code']}")
        # "Instance Name" can be empty; the usage type (EUW1-Host:ml.m5.xlarge) ends in the name too.
        name = (cell.get("Instance Name") or cell.get("usageType", "").rpartition(":")[2]).strip()
        if INSTANCE_NAME.fullmatch(name):
            types[use].add(name)
    empty = [USES[use] for use, found in types.items() if not found]
    if empty:
        raise OfferFileError(f"region {region}: no on-demand hourly {', '.join(empty)} rows; is it the "
                             f"AmazonSageMaker offer file of {region}?")
    return {
        # Derived from the file's version: the URL AWS keeps that version of the region's file under.
        "source": OFFER_URL.format(version=version, region=region),
        "offer_version": version,
        "publication_date": published,
        "sha256": hashlib.sha256(data).hexdigest(),
        **{use: sorted(found) for use, found in types.items()},
    }


def read_offer_file(region: str, directory: Optional[Path], fetch: Callable[[str], bytes]) -> bytes:
    """The offer file of ``region``: from ``directory`` when given, else fetched from the Price List."""
    if directory is None:
        url = OFFER_URL.format(version="current", region=region)
        try:
            return fetch(url)
        except (OSError, http.client.HTTPException) as error:
            raise OfferFileError(f"region {region}: cannot read {url}: {error}") from error
    for path in (directory / f"{region}.csv", directory / region / "index.csv"):
        if path.is_file():
            return path.read_bytes()
    raise OfferFileError(f"region {region}: no {directory / f'{region}.csv'} or {directory / region / 'index.csv'}")


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # a fixed https URL of AWS's public price list
        return response.read()


def main(argv: Optional[Sequence[str]] = None, *, fetch: Callable[[str], bytes] = _fetch) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_cli.instance_offers", description=__doc__.split("\n\n")[1])
    parser.add_argument("--region", action="append", required=True, help="a region to (re)read; repeat for more")
    parser.add_argument("--from", dest="directory", type=Path, help="read <region>.csv or <region>/index.csv here")
    parser.add_argument("--out", type=Path, default=OFFERS_PATH, help="the table (default: the app's)")
    args = parser.parse_args(argv)
    try:
        unsupported = [r for r in args.region if r not in SUPPORTED_REGIONS]
        if unsupported:
            raise ValueError(f"--region {unsupported[0]}: not a region mlops-loop supports; supported: {', '.join(SUPPORTED_REGIONS)}")
        document = json.loads(args.out.read_text(encoding="utf-8"))
        parse_offers(document, source=str(args.out))
        for region in args.region:
            document["regions"][region] = region_entry(region, read_offer_file(region, args.directory, fetch))
    except (OSError, ValueError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
    document["regions"] = dict(sorted(document["regions"].items()))
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    for region in args.region:
        entry = document["regions"][region]
        print(f"{region}: " + ", ".join(f"{len(entry[use])} {use}" for use in USES)
              + f" types (Price List {entry['offer_version']}, published {entry['publication_date']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
