"""python -m mlops_cli.instance_offers: the per-region table of offered instance types, made from AWS Price List
offer files (CSV) written here in the format AWS publishes them: five "key","value" rows, then a header and one row
per price."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from mlops_cli import instance_offers
from mlops_loop.config.instance_offers import parse_offers

HEADER = ["SKU", "OfferTermCode", "RateCode", "TermType", "PriceDescription", "EffectiveDate", "StartingRange",
          "EndingRange", "Unit", "PricePerUnit", "Currency", "Product Family", "serviceCode", "Location",
          "Location Type", "Instance Type", "Instance Name", "Component", "usageType", "operation", "Region Code"]


def offer_file(region: str, rows: list[tuple[str, str, str, str, str]], *, offer_code: str = "AmazonSageMaker",
               version: str = "20261201000000") -> bytes:
    """An offer CSV of ``region``; each row: (TermType, Unit, Instance Name, Component, usageType)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerows([["FormatVersion", "v1.0"], ["Disclaimer", "This pricing list is for informational purposes only."],
                      ["Publication Date", "2026-12-01T00:00:00Z"], ["Version", version], ["OfferCode", offer_code]])
    writer.writerow(HEADER)
    for term, unit, name, component, usage in rows:
        values = {"TermType": term, "Unit": unit, "Instance Name": name, "Component": component, "usageType": usage,
                  "Region Code": region, "PricePerUnit": "0.2300000000", "Currency": "USD", "Product Family": "ML Instance"}
        writer.writerow([values.get(column, "") for column in HEADER])
    return out.getvalue().encode()


EU_ROWS = [
    ("OnDemand", "Hrs", "ml.m5.xlarge", "Training", "EU-Train:ml.m5.xlarge"),
    ("OnDemand", "Hrs", "ml.m5.xlarge", "Processing", "EU-Processing:ml.m5.xlarge"),
    ("OnDemand", "Hrs", "ml.m5.large", "Hosting", "EU-Host:ml.m5.large"),
    # No instance name: the usage type ends in it.
    ("OnDemand", "Hrs", "", "Hosting", "EU-Host:ml.inf2.xlarge"),
    # Not on-demand hourly, or not one of the three uses: not counted.
    ("Reserved", "Hrs", "ml.trn1.2xlarge", "Hosting", "EU-Host:ml.trn1.2xlarge"),
    ("OnDemand", "GB-Mo", "ml.p4d.24xlarge", "Training", "EU-Train:ml.p4d.24xlarge"),
    ("OnDemand", "Hrs", "ml.t3.medium", "Notebook", "EU-Notebk:ml.t3.medium"),
]


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    """GIVEN a table that already holds us-east-1."""
    path = tmp_path / "instance_offers.json"
    entry = {"source": "https://x/us-east-1/index.csv", "offer_version": "1", "publication_date": "2026-01-01",
             "sha256": "0" * 64, "training": ["ml.m5.xlarge"], "processing": ["ml.m5.xlarge"], "hosting": ["ml.m5.large"]}
    path.write_text(json.dumps({"about": "test table", "regions": {"us-east-1": entry}}))
    return path


def test_an_offer_file_becomes_the_regions_entry_with_its_provenance(tmp_path, table, capsys):
    """GIVEN eu-west-1's offer file in a directory WHEN the table is made from it THEN the region holds the on-demand
    hourly types of each use, the versioned URL, date and sha256 of the file, and the other region is kept."""
    data = offer_file("eu-west-1", EU_ROWS)
    (tmp_path / "offers").mkdir()
    (tmp_path / "offers" / "eu-west-1.csv").write_bytes(data)

    assert instance_offers.main(["--region", "eu-west-1", "--from", str(tmp_path / "offers"), "--out", str(table)]) == 0

    document = json.loads(table.read_text())
    assert list(document["regions"]) == ["eu-west-1", "us-east-1"] and document["about"] == "test table"
    assert document["regions"]["eu-west-1"] == {
        "source": "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/20261201000000/eu-west-1/index.csv",
        "offer_version": "20261201000000",
        "publication_date": "2026-12-01T00:00:00Z",
        "sha256": hashlib.sha256(data).hexdigest(),
        "training": ["ml.m5.xlarge"],
        "processing": ["ml.m5.xlarge"],
        "hosting": ["ml.inf2.xlarge", "ml.m5.large"],
    }
    assert parse_offers(document)["eu-west-1"].problem("hosting", "ml.trn1.2xlarge").startswith(
        "ml.trn1.2xlarge is not offered for hosting in eu-west-1; offered: ml.inf2.xlarge, ml.m5.large")
    assert capsys.readouterr().out == ("eu-west-1: 1 training, 1 processing, 2 hosting types "
                                       "(Price List 20261201000000, published 2026-12-01T00:00:00Z)\n")


def test_without_a_directory_the_current_offer_file_is_read_from_the_price_list(table):
    asked = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return offer_file("eu-west-1", EU_ROWS)

    assert instance_offers.main(["--region", "eu-west-1", "--out", str(table)], fetch=fetch) == 0
    assert asked == ["https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/current/eu-west-1/index.csv"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (offer_file("eu-west-1", EU_ROWS, offer_code="AmazonEC2"),
         "region eu-west-1: the offer file is for AmazonEC2, not AmazonSageMaker"),
        (b"SKU,TermType\nX,OnDemand\n",
         "region eu-west-1: no 'OfferCode', 'Version' and 'Publication Date' rows before a header starting with SKU; "
         "is it an AWS Price List offer file (CSV)?"),
        (offer_file("eu-west-1", EU_ROWS).replace(b'"Component",', b'"Part",'),
         "region eu-west-1: the offer file has no Component column"),
        ("é".encode("latin-1"), "region eu-west-1: the offer file is not UTF-8 text (unexpected end of data at byte 0)"),
        (offer_file("eu-west-1", [r for r in EU_ROWS if r[3] != "Hosting"]),
         "region eu-west-1: no on-demand hourly Hosting rows; is it the AmazonSageMaker offer file of eu-west-1?"),
        (offer_file("us-west-2", EU_ROWS), "region eu-west-1: the file lists prices for us-west-2"),
    ],
    ids=["another-service", "no-preamble", "no-component-column", "not-utf8", "no-hosting", "another-region"],
)
def test_a_file_that_is_not_the_regions_sagemaker_offer_is_refused_and_the_table_left_as_it_was(table, capsys, data, message):
    before = table.read_text()
    assert instance_offers.main(["--region", "eu-west-1", "--out", str(table)], fetch=lambda url: data) == 2
    assert capsys.readouterr().err == f"ERROR: {message}\n"
    assert table.read_text() == before


def test_an_unreadable_source_is_one_line_naming_it(tmp_path, table, capsys):
    def offline(url: str) -> bytes:
        raise OSError("Network is unreachable")

    assert instance_offers.main(["--region", "eu-west-1", "--out", str(table)], fetch=offline) == 2
    assert capsys.readouterr().err == ("ERROR: region eu-west-1: cannot read https://pricing.us-east-1.amazonaws.com/"
                                       "offers/v1.0/aws/AmazonSageMaker/current/eu-west-1/index.csv: Network is unreachable\n")
    assert instance_offers.main(["--region", "eu-west-1", "--from", str(tmp_path), "--out", str(table)]) == 2
    assert capsys.readouterr().err == (f"ERROR: region eu-west-1: no {tmp_path / 'eu-west-1.csv'} or "
                                       f"{tmp_path / 'eu-west-1' / 'index.csv'}\n")


def test_a_saved_file_with_a_byte_order_mark_under_region_index_csv_is_read(tmp_path, table):
    (tmp_path / "eu-west-1").mkdir()
    (tmp_path / "eu-west-1" / "index.csv").write_bytes(b"\xef\xbb\xbf" + offer_file("eu-west-1", EU_ROWS))
    assert instance_offers.main(["--region", "eu-west-1", "--from", str(tmp_path), "--out", str(table)]) == 0
    assert json.loads(table.read_text())["regions"]["eu-west-1"]["hosting"] == ["ml.inf2.xlarge", "ml.m5.large"]


def test_when_one_of_two_regions_fails_the_table_is_left_as_it_was(tmp_path, table, capsys):
    (tmp_path / "eu-west-1.csv").write_bytes(offer_file("eu-west-1", EU_ROWS))
    before = table.read_text()
    assert instance_offers.main(["--region", "eu-west-1", "--region", "eu-central-1", "--from", str(tmp_path),
                                 "--out", str(table)]) == 2
    assert capsys.readouterr().err.startswith("ERROR: region eu-central-1: no ")
    assert table.read_text() == before


def test_a_region_the_app_does_not_support_is_refused_naming_it(table, capsys):
    assert instance_offers.main(["--region", "mars-north-1", "--out", str(table)], fetch=lambda url: b"") == 2
    assert capsys.readouterr().err.startswith("ERROR: --region mars-north-1: not a region mlops-loop supports; "
                                              "supported: us-east-1, ")
