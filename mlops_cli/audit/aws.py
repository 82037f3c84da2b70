"""The audit's names, its AWS clients and the plumbing every gatherer shares (pages, errors, gaps, S3 reads)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from mlops_cli.target import describe_error, error_code, unusable_credentials as is_credentials_error  # noqa: F401 - the audit's names
from pipeline_code.core.contract import S3_OBJECT_URI, endpoint_name, environment_prefix, package_group_name, package_parameter_name, pipeline_name, serving_stack_name



class AuditError(Exception):
    """Bad input or an unusable environment (unknown model/version, nothing serving, no credentials)."""


@dataclass(frozen=True)
class Names:
    project: str
    env: str
    model: str

    @property
    def prefix(self) -> str:
        return environment_prefix(self.project, self.env)

    @property
    def group(self) -> str:
        return package_group_name(self.prefix, self.model)

    @property
    def pipeline(self) -> str:
        return pipeline_name(self.prefix, self.model)

    @property
    def serving_stack(self) -> str:
        return serving_stack_name(self.prefix)

    @property
    def endpoint(self) -> str:
        return endpoint_name(self.prefix, self.model)

    @property
    def parameter(self) -> str:
        return package_parameter_name(self.model)


@dataclass
class Clients:
    """The boto3 clients the audit uses (injectable for tests)."""

    sagemaker: Any
    s3: Any
    cloudformation: Any
    cloudtrail: Any
    sts: Any

    @classmethod
    def create(cls, region: Optional[str] = None) -> "Clients":
        """Clients of one boto3 session; ``region=None`` uses the environment's default region."""
        import boto3

        session = boto3.Session(region_name=region)
        if not session.region_name:
            raise AuditError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
        return cls(*(session.client(s) for s in ("sagemaker", "s3", "cloudformation", "cloudtrail", "sts")))


def aws_errors() -> Tuple[type, ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def iso_time(value: Any) -> Optional[str]:
    """ISO-8601 UTC text of a botocore timestamp (datetime) or ISO string; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def as_datetime(value: Any) -> Optional[dt.datetime]:
    text = iso_time(value)
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def list_pages(call: Callable[..., Dict[str, Any]], key: str, token_key: str = "NextToken", *,
               next_token_key: Optional[str] = None, **kwargs: Any) -> List[Any]:
    """Every item under ``key`` across NextToken pages (capped so a bad token cannot loop forever).

    ``next_token_key``: where a page returns the token when it differs from the request's ``token_key`` (S3's
    ListObjectsV2 takes ``ContinuationToken`` and returns ``NextContinuationToken``)."""
    items: List[Any] = []
    for _ in range(200):
        page = call(**kwargs)
        items.extend(page.get(key) or [])
        token = page.get(next_token_key or token_key)
        if not token:
            break
        kwargs[token_key] = token
    return items


def s3_parts(uri: str) -> Tuple[str, str]:
    match = S3_OBJECT_URI.match(uri or "")
    if not match:
        raise ValueError(f"not an s3:// object URI: {uri!r}")
    return match.group(1), match.group(2)


# The report's parts a gap can be in, in the report's order (the JSON output's ``sections``; --fail-on-gaps names them).
SECTIONS = ("model_package", "data_and_code", "pipeline_execution", "evaluation", "model_card", "approval",
            "deployment", "lineage")


class Gaps(list):
    """The gaps found, in order; each message's section (:data:`SECTIONS`) in :attr:`sections`: the one given to
    :meth:`add`, else :attr:`section`, the part being gathered."""

    def __init__(self) -> None:
        super().__init__()
        self.section = "model_package"
        self.sections: Dict[str, str] = {}

    def add(self, message: str, *, section: Optional[str] = None) -> None:
        if message not in self:
            self.append(message)
            self.sections[message] = section or self.section


def attempt(gaps: Gaps, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, or None with a gap naming ``what`` and the error (credentials errors propagate)."""
    try:
        return call()
    except aws_errors() as exc:
        if is_credentials_error(exc):
            raise
        gaps.add(f"{what}: {describe_error(exc)}")
        return None


# How far back CloudTrail's event history (LookupEvents) reaches.
CLOUDTRAIL_HISTORY_DAYS = 90


def read_bytes(clients: Clients, uri: str) -> bytes:
    bucket, key = s3_parts(uri)
    return clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def read_json(clients: Clients, uri: str) -> Dict[str, Any]:
    return json.loads(read_bytes(clients, uri))


def user_of(context: Any) -> Optional[str]:
    if not isinstance(context, Mapping):
        return None
    parts = [context.get("UserProfileName"), context.get("UserProfileArn")]
    iam = context.get("IamIdentity") or {}
    parts.append(iam.get("Arn") or iam.get("PrincipalId"))
    return " / ".join(str(p) for p in parts if p) or None
