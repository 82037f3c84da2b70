"""The model card job: ``python -m pipeline_code.training.model_card`` (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Mapping, Optional, Sequence, Tuple

from pipeline_code.core.contract import EVALUATION_FILE, FROZEN_TEST_PROPERTY
from pipeline_code.training.spec import ModelSpec, SpecError, parse_model_spec

from .content import CARD_JSON, CARD_MARKDOWN, ModelCardError, build_model_card, card_name, parse_package_arn
from .publish import create_or_update
from .render import render_markdown

PROG = "python -m pipeline_code.training.model_card"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output/model_card"


def _read_spec(value: str) -> Tuple[ModelSpec, Optional[str]]:
    """The parsed spec and the ``description`` of the raw config entry, if it has one."""
    spec = parse_model_spec(value)
    description = None
    text = value
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            text = handle.read()
    try:
        raw = json.loads(text)
        if isinstance(raw, Mapping) and isinstance(raw.get("description"), str):
            description = raw["description"].strip() or None
    except ValueError:
        pass
    return spec, description


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--evaluation-dir", "--evaluation_dir", dest="evaluation_dir", required=True, help=f"directory holding {EVALUATION_FILE}"
    )
    parser.add_argument(
        "--model-spec",
        "--model_spec",
        dest="model_spec",
        required=True,
        help="the model's config entry: JSON text or a JSON file",
    )
    parser.add_argument(
        "--model-package-arn",
        "--model_package_arn",
        dest="model_package_arn",
        default=None,
        help="the registered version (required with --create)",
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        dest="output_dir",
        default=DEFAULT_OUTPUT_DIR,
        help=f"where the card files go (default {DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--description", default=None, help="intended use text (default: the spec's 'description', else one built from the spec)"
    )
    parser.add_argument(
        "--test-set-uri",
        "--test_set_uri",
        dest="test_set_uri",
        default=None,
        help="S3 URI of the frozen test set, recorded as the evaluation dataset",
    )
    parser.add_argument("--create", action="store_true",
                        help="create (or update) the SageMaker model card <group>-v<version>-<package creation time>")
    parser.add_argument(
        "--kms-key-id",
        "--kms_key_id",
        dest="kms_key_id",
        default=None,
        help="KMS key for the card's content (with --create; default: AWS owned key)",
    )
    parser.add_argument("--region", default=None, help="AWS region (default: the environment's)")
    return parser


def main(argv: Optional[Sequence[str]] = None, *, sagemaker_client: Any = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.create and not args.model_package_arn:
        parser.error("--create needs --model-package-arn (the card is named after and linked to the version)")
    try:
        spec, spec_description = _read_spec(args.model_spec)
        path = os.path.join(args.evaluation_dir, EVALUATION_FILE)
        if not os.path.isfile(path):
            raise ModelCardError(
                f"--evaluation-dir {args.evaluation_dir!r} holds no {EVALUATION_FILE}: pass the Evaluate step's output"
            )
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        if args.model_package_arn:
            parse_package_arn(args.model_package_arn)
    except (SpecError, ModelCardError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from botocore.exceptions import BotoCoreError, ClientError

    package = None
    client = sagemaker_client
    if args.create:
        if client is None:
            import boto3

            client = boto3.client("sagemaker", region_name=args.region)
        try:
            package = client.describe_model_package(ModelPackageName=args.model_package_arn)
        except (ClientError, BotoCoreError) as exc:
            print(f"{PROG}: error: cannot read {args.model_package_arn}: {exc}", file=sys.stderr)
            return 1
    try:
        content = build_model_card(
            evaluation_report=report,
            model_spec=spec,
            description=args.description or spec_description,
            model_package_arn=args.model_package_arn,
            model_package=package,
            test_set_uri=args.test_set_uri or ((package or {}).get("CustomerMetadataProperties") or {}).get(FROZEN_TEST_PROPERTY),
        )
    except ModelCardError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, CARD_JSON), "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
    with open(os.path.join(args.output_dir, CARD_MARKDOWN), "w", encoding="utf-8") as handle:
        handle.write(render_markdown(content))
    print(f"wrote {CARD_JSON} and {CARD_MARKDOWN} to {args.output_dir}; risk rating {content['intended_uses']['risk_rating']}")
    if args.create:
        # Named after the package's creation too: a group deleted and created again restarts at version 1, and its
        # new v1 must not take over the card of the v1 before it (contract.model_card_name).
        try:
            name = card_name(args.model_package_arn, (package or {}).get("CreationTime"))
        except ValueError as exc:
            print(f"{PROG}: error: {args.model_package_arn}: DescribeModelPackage gave no usable CreationTime ({exc}), "
                  "which the card's name carries", file=sys.stderr)
            return 1
        try:
            outcome, arn = create_or_update(client, name=name, content=content, kms_key_id=args.kms_key_id)
        except ModelCardError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        except (ClientError, BotoCoreError) as exc:
            print(f"{PROG}: error: model card {name!r}: {exc}", file=sys.stderr)
            return 1
        print(f"model card {name}: {outcome} ({arn})")
    return 0
