"""The single definition of every dataset, column and feature in mlops-loop.

This module is the contract between the infrastructure and the job code:

* the CDK app reads it to generate the SageMaker FeatureGroups (names, types,
  record identifier, event time) and the Glue job arguments;
* the Glue ETL job reads it to type, validate and quarantine raw records;
* the feature-ingestion job interprets each feature's expression to compute it;
* serving reads the same feature names back from the online store.

It is deliberately standard-library only and Python 3.9 compatible: it is
imported by the CDK app (Python 3.11), by Glue 5 Spark jobs and by Glue Python
shell jobs (Python 3.9), and by SageMaker Processing containers.

Feature computations are *declarative* expressions (``col``, ``ratio``,
``log1p`` ...) rather than arbitrary Python so that one definition can be
interpreted identically wherever features are computed, and so that the
infrastructure can reason about them (types, source columns) without running
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

# --------------------------------------------------------------------------------------
# Column types of the raw / curated schema and the Feature Store types they map to.
# --------------------------------------------------------------------------------------
STRING = "string"
INTEGER = "integer"
DOUBLE = "double"
TIMESTAMP = "timestamp"

COLUMN_TYPES = (STRING, INTEGER, DOUBLE, TIMESTAMP)

# SageMaker Feature Store knows exactly three feature types.
INTEGRAL = "Integral"
FRACTIONAL = "Fractional"
FS_STRING = "String"

FEATURE_TYPES = (INTEGRAL, FRACTIONAL, FS_STRING)


@dataclass(frozen=True)
class Column:
    """One column of a dataset's raw (and curated) schema.

    ``nullable=False`` columns route a record to quarantine when missing;
    ``minimum``/``maximum`` and ``allowed`` route it to quarantine when violated.
    """

    name: str
    dtype: str
    nullable: bool = True
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    allowed: Optional[Tuple[str, ...]] = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: dtype {self.dtype!r} is not one of {COLUMN_TYPES}")
        if self.allowed is not None and self.dtype != STRING:
            raise ValueError(f"column {self.name!r}: 'allowed' is only valid for string columns")


# --------------------------------------------------------------------------------------
# Feature expressions: a tiny, closed language. Interpreters live in the job code
# (pipeline_code.features.compute); every operator listed here must be implemented there.
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expr:
    """A node of a feature expression: ``op`` applied to ``args``.

    Args are column names (``str``), nested ``Expr`` or literal parameters.
    """

    op: str
    args: Tuple[object, ...] = ()

    def source_columns(self) -> Tuple[str, ...]:
        """Names of the curated columns this expression reads, in first-seen order."""
        out: list = []
        for arg in self.args:
            if isinstance(arg, Expr):
                out.extend(c for c in arg.source_columns() if c not in out)
            elif self.op in _COLUMN_ARG_OPS and isinstance(arg, str) and arg not in out:
                out.append(arg)
        return tuple(out)


# Operators whose string arguments name columns (for the others, strings are literals).
_COLUMN_ARG_OPS = {"col", "ratio", "log1p", "clip", "coalesce", "bucket", "product"}

OPERATORS = (
    "col",  # the column itself
    "ratio",  # a / b; null when b is 0 or either side is null
    "log1p",  # log(1 + x); null when x < 0 or null
    "clip",  # x limited to [lo, hi]
    "coalesce",  # first non-null of its args
    "bucket",  # label of the half-open interval [edge_i, edge_i+1) x falls in
    "product",  # a * b
)


def col(name: str) -> Expr:
    return Expr("col", (name,))


def ratio(numerator: object, denominator: object) -> Expr:
    return Expr("ratio", (numerator, denominator))


def log1p(x: object) -> Expr:
    return Expr("log1p", (x,))


def clip(x: object, lo: float, hi: float) -> Expr:
    return Expr("clip", (x, float(lo), float(hi)))


def coalesce(*xs: object) -> Expr:
    return Expr("coalesce", tuple(xs))


def product(a: object, b: object) -> Expr:
    return Expr("product", (a, b))


def bucket(x: object, edges: Tuple[float, ...], labels: Tuple[str, ...]) -> Expr:
    """``labels[i]`` for ``edges[i-1] <= x < edges[i]``; len(labels) == len(edges) + 1."""
    if len(labels) != len(edges) + 1:
        raise ValueError("bucket: need exactly one more label than edges")
    if list(edges) != sorted(edges):
        raise ValueError("bucket: edges must be ascending")
    return Expr("bucket", (x, tuple(float(e) for e in edges), tuple(labels)))


@dataclass(frozen=True)
class FeatureDef:
    """One feature: its Feature Store name and type, and how it is computed."""

    name: str
    feature_type: str
    expr: Expr
    description: str = ""

    def __post_init__(self) -> None:
        if self.feature_type not in FEATURE_TYPES:
            raise ValueError(f"feature {self.name!r}: type {self.feature_type!r} is not one of {FEATURE_TYPES}")
        if self.expr.op not in OPERATORS:
            raise ValueError(f"feature {self.name!r}: unknown operator {self.expr.op!r}")


@dataclass(frozen=True)
class Dataset:
    """A source dataset: its raw schema, its entity keys, its labels and its features.

    One SageMaker FeatureGroup is generated per dataset; models select features from it.
    """

    name: str
    description: str
    record_identifier: str
    event_time: str
    columns: Tuple[Column, ...]
    labels: Tuple[str, ...]
    features: Tuple[FeatureDef, ...]
    # Raw file format landed in the lake, and the partition key the ETL writes by.
    raw_format: str = "csv"
    meta: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name!r}: duplicate column names")
        for key in (self.record_identifier, self.event_time, *self.labels):
            if key not in names:
                raise ValueError(f"dataset {self.name!r}: {key!r} is not a column")
        feature_names = [f.name for f in self.features]
        if len(set(feature_names)) != len(feature_names):
            raise ValueError(f"dataset {self.name!r}: duplicate feature names")
        reserved = {self.record_identifier, self.event_time}
        for feature in self.features:
            if feature.name in reserved:
                raise ValueError(f"dataset {self.name!r}: feature {feature.name!r} clashes with a key column")
            if feature.name in self.labels:
                raise ValueError(f"dataset {self.name!r}: feature {feature.name!r} is a label (target leakage)")
            for source in feature.expr.source_columns():
                if source not in names:
                    raise ValueError(
                        f"dataset {self.name!r}: feature {feature.name!r} reads unknown column {source!r}"
                    )
                if source in self.labels:
                    raise ValueError(
                        f"dataset {self.name!r}: feature {feature.name!r} reads label {source!r} (target leakage)"
                    )

    # Convenience lookups -------------------------------------------------------------
    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def feature(self, name: str) -> FeatureDef:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def feature_names(self) -> Tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature_store_definitions(self) -> Tuple[Tuple[str, str], ...]:
        """(name, Feature Store type) for every feature of the generated FeatureGroup.

        The record identifier and event time are stored as Strings (ISO-8601 event
        time), followed by every feature in definition order.
        """
        keys = ((self.record_identifier, FS_STRING), (self.event_time, FS_STRING))
        return keys + tuple((f.name, f.feature_type) for f in self.features)


# --------------------------------------------------------------------------------------
# The sample datasets shipped with mlops-loop.
# --------------------------------------------------------------------------------------
CUSTOMER_CHURN = Dataset(
    name="customer_churn",
    description="Monthly snapshot of subscription customers; label: churned in the next 30 days.",
    record_identifier="customer_id",
    event_time="event_time",
    columns=(
        Column("customer_id", STRING, nullable=False, description="Stable customer key"),
        Column("event_time", TIMESTAMP, nullable=False, description="Snapshot time (UTC)"),
        Column("tenure_months", INTEGER, nullable=False, minimum=0, maximum=600),
        Column("monthly_charges", DOUBLE, nullable=False, minimum=0, maximum=10_000),
        Column("total_charges", DOUBLE, minimum=0, description="Null for brand-new customers"),
        Column("contract_type", STRING, nullable=False, allowed=("month-to-month", "one-year", "two-year")),
        Column("payment_method", STRING, allowed=("card", "bank-transfer", "invoice", "wallet")),
        Column("support_calls_90d", INTEGER, minimum=0, maximum=1_000),
        Column("region", STRING, nullable=False, allowed=("north", "south", "east", "west")),
        Column("gender", STRING, allowed=("female", "male", "other"), description="Sensitive attribute"),
        Column("churned", INTEGER, minimum=0, maximum=1, description="Label: churned within 30 days"),
    ),
    labels=("churned",),
    features=(
        FeatureDef("tenure_months", INTEGRAL, col("tenure_months"), "Months since signup"),
        FeatureDef("monthly_charges", FRACTIONAL, col("monthly_charges"), "Current monthly bill"),
        FeatureDef(
            "total_charges",
            FRACTIONAL,
            coalesce("total_charges", product("monthly_charges", "tenure_months")),
            "Lifetime billing; estimated as monthly x tenure when not yet billed",
        ),
        FeatureDef(
            "avg_charge_per_month",
            FRACTIONAL,
            ratio(coalesce("total_charges", product("monthly_charges", "tenure_months")), "tenure_months"),
            "Lifetime billing per month of tenure; null at tenure 0",
        ),
        FeatureDef("log_support_calls_90d", FRACTIONAL, log1p("support_calls_90d"), "log(1 + support calls)"),
        FeatureDef("contract_type", FS_STRING, col("contract_type")),
        FeatureDef("payment_method", FS_STRING, col("payment_method")),
        FeatureDef("region", FS_STRING, col("region")),
        FeatureDef("gender", FS_STRING, col("gender"), "Sensitive attribute: fairness slices only"),
    ),
)

CREDIT_RISK = Dataset(
    name="credit_risk",
    description="Loan applications; label: defaulted within 12 months.",
    record_identifier="application_id",
    event_time="event_time",
    columns=(
        Column("application_id", STRING, nullable=False),
        Column("event_time", TIMESTAMP, nullable=False, description="Application time (UTC)"),
        Column("applicant_age", INTEGER, nullable=False, minimum=18, maximum=120),
        Column("annual_income", DOUBLE, nullable=False, minimum=0),
        Column("loan_amount", DOUBLE, nullable=False, minimum=100, maximum=5_000_000),
        Column("credit_history_months", INTEGER, minimum=0, maximum=1_200),
        Column("num_open_accounts", INTEGER, minimum=0, maximum=200),
        Column("employment_type", STRING, allowed=("salaried", "self-employed", "unemployed", "retired")),
        Column("purpose", STRING, nullable=False, allowed=("home", "car", "education", "business", "other")),
        Column("defaulted", INTEGER, minimum=0, maximum=1, description="Label: default within 12 months"),
    ),
    labels=("defaulted",),
    features=(
        FeatureDef("loan_amount", FRACTIONAL, col("loan_amount")),
        FeatureDef("log_annual_income", FRACTIONAL, log1p("annual_income")),
        FeatureDef("loan_to_income", FRACTIONAL, ratio("loan_amount", "annual_income"), "Null when income is 0"),
        FeatureDef("credit_history_months", INTEGRAL, col("credit_history_months")),
        FeatureDef("num_open_accounts", INTEGRAL, clip("num_open_accounts", 0, 50), "Capped at 50"),
        FeatureDef("employment_type", FS_STRING, col("employment_type")),
        FeatureDef("purpose", FS_STRING, col("purpose")),
        FeatureDef(
            "age_group",
            FS_STRING,
            bucket("applicant_age", (25, 40, 60), ("18-24", "25-39", "40-59", "60+")),
            "Sensitive attribute (age band): fairness slices only",
        ),
    ),
)

DATASETS: Dict[str, Dataset] = {d.name: d for d in (CUSTOMER_CHURN, CREDIT_RISK)}


def get_dataset(name: str) -> Dataset:
    """The dataset called ``name``; a KeyError lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}") from None
