"""A SageMaker Model Card for a registered model version, filled from its evaluation report.

:func:`build_model_card` turns the ``evaluation.json`` written by
:mod:`pipeline_code.training.evaluate` (plus the model's configuration) into the content of a
SageMaker Model Card (the model card JSON schema, snake_case sections)::

    model_overview          what the model is, its artifact, its problem type
    intended_uses           purpose (the model's description in the config), intended use, risk rating
    training_details        rounds, hyperparameters, validation metrics
    evaluation_details      metrics vs the champion, gate checks, fairness per metric with its
                            threshold, slices, and per problem type (``core.problem``):
                            binary: confusion matrix at the threshold, ROC curve, positive rate per group;
                            multiclass: metrics and confusion matrix per class, parity per class,
                            predicted class shares per group;
                            regression: error quantiles, MAE and bias per group (error parity)
    additional_information  limitations (failed gate checks, small slices and groups),
                            ethical considerations (fairness), custom details
    model_package_details   the registered version (when its ARN is given)

The problem type is the report's ``problem_type`` (binary when absent); it must be the spec's.
:func:`render_markdown` renders the same content for people. Only the sections and field names
of the documented schema are used; every string respects the schema's length limits (and a
matrix its 20 x 20 limit: a multiclass model with more classes has no confusion matrix in the card).

Modules: :mod:`.content` (the card's content), :mod:`.render` (Markdown), :mod:`.publish` (create or
update the SageMaker card), :mod:`.cli` (the job). As a job (the step after Register)::

    python -m pipeline_code.training.model_card --evaluation-dir DIR --model-spec FILE \\
        --model-package-arn ARN [--output-dir DIR] [--create] [--description TEXT] [--region R]

writes ``model_card.json`` (the content) and ``model_card.md`` to ``--output-dir``. With
``--create`` it also creates the SageMaker model card ``<group>-v<version>-<created>`` (status Draft,
linked to the package; ``<created>`` the package's creation time, ``contract.model_card_name``, so a version of
a group deleted and created again never reuses the card of the version that had its number before): a card
that exists already is updated when its content differs (back to Draft: changed content needs a new review) and
left alone when it is identical; one that describes another package (ARN and creation time) is never touched.
Exit status: 0 done; 1 AWS error, an archived card or another package's card; 2 bad arguments or input.
"""

from .cli import build_parser, main
from .content import (
    CARD_JSON,
    CARD_MARKDOWN,
    ModelCardError,
    PACKAGE_CREATED_DETAIL,
    build_model_card,
    card_name,
    card_package,
    figure,
    limitations,
    parse_package_arn,
)
from .publish import create_or_update
from .render import render_markdown

__all__ = [
    "CARD_JSON",
    "CARD_MARKDOWN",
    "ModelCardError",
    "PACKAGE_CREATED_DETAIL",
    "build_model_card",
    "build_parser",
    "card_name",
    "card_package",
    "create_or_update",
    "figure",
    "limitations",
    "main",
    "parse_package_arn",
    "render_markdown",
]
