"""Reading a synthesized template as CloudFormation would deploy it with the parameter defaults:
literal values, conditions, and the metadata the app's constructs attach."""

from __future__ import annotations

import re
from typing import Any, Optional

from ...naming import RESOURCE_METADATA_KEY as METADATA_KEY
from ..cloud_assembly import SynthesizedStack


INSTANCE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY_DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
RESOURCE_ID = re.compile(r"^endpoint/(?P<endpoint>[^/]+)/variant/(?P<variant>[^/]+)$")
class Template:
    def __init__(self, stack: SynthesizedStack) -> None:
        self.stack = stack
        template = stack.template
        self.resources: dict[str, dict] = template.get("Resources", {}) or {}
        self.parameters: dict[str, dict] = template.get("Parameters", {}) or {}
        self.conditions: dict[str, Any] = template.get("Conditions", {}) or {}
        self._condition_cache: dict[str, Optional[bool]] = {}

    @property
    def name(self) -> str:
        return self.stack.stack_name

    @property
    def deploys_as(self) -> tuple[str, str]:
        """(target ``aws://<account>/<region>``, stack name): the CloudFormation stack this template deploys as."""
        return self.stack.deploys_as

    def value(self, expr: Any) -> Any:
        """The literal value of ``expr`` with every parameter at its default; None when it depends on
        anything only known at deploy time (another resource's attribute, an import, ...)."""
        if isinstance(expr, (str, int, float, bool)):
            return expr
        if not (isinstance(expr, dict) and len(expr) == 1):
            return None
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return self.parameters.get(arg, {}).get("Default") if isinstance(arg, str) else None
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            parts = [self.value(part) for part in arg[1]]
            return None if any(p is None for p in parts) else str(arg[0]).join(str(p) for p in parts)
        if fn == "Fn::GetAtt":
            dotted = ".".join(map(str, arg)) if isinstance(arg, list) else str(arg)
            logical_id, _, attribute = dotted.partition(".")
            resource = self.resources.get(logical_id, {})
            if attribute == "EndpointName" and resource.get("Type") == "AWS::SageMaker::Endpoint":
                return self.endpoint_key(logical_id)
            return None
        if fn == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
            holds = self.condition(arg[0])
            return None if holds is None else self.value(arg[1] if holds else arg[2])
        return None

    def text(self, expr: Any) -> Optional[str]:
        """The string ``expr`` renders to, every part known only at deploy time (another resource's attribute, an
        import) written ``${...}``: enough to read the literal parts of a JSON document built with ``Fn::Join`` (a
        schedule's Input, a pipeline definition). None when ``expr`` is no string or join of strings."""
        literal = self.value(expr)
        if isinstance(literal, (str, int, float)):
            return str(literal)
        if isinstance(expr, dict) and len(expr) == 1 and isinstance(expr.get("Fn::Join"), list):
            separator, parts = (expr["Fn::Join"] + [None, None])[:2]
            if isinstance(separator, str) and isinstance(parts, list):
                rendered = [self.text(part) for part in parts]
                return separator.join("${?}" if part is None else part for part in rendered)
        return None

    def endpoint_key(self, logical_id: str) -> str:
        """The endpoint's name when the template fixes it, else a stand-in unique to this stack."""
        name = self.value(self.resources[logical_id].get("Properties", {}).get("EndpointName"))
        # No "/" in the stand-in: it has to fit the endpoint part of a ResourceId (endpoint/<name>/variant/<v>).
        return name if isinstance(name, str) and name else f"<{self.name}:{logical_id}>"

    def condition(self, name: str) -> Optional[bool]:
        """Whether the named condition holds with the parameter defaults (None: not decidable)."""
        if name not in self._condition_cache:
            self._condition_cache[name] = None  # a cycle is not decidable
            self._condition_cache[name] = self._truth(self.conditions.get(name))
        return self._condition_cache[name]

    def _truth(self, expr: Any) -> Optional[bool]:
        if isinstance(expr, bool):
            return expr
        if not (isinstance(expr, dict) and len(expr) == 1):
            return None
        ((fn, arg),) = expr.items()
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = self.value(arg[0]), self.value(arg[1])
            return None if left is None or right is None else str(left) == str(right)
        if fn == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            inner = self._truth(arg[0])
            return None if inner is None else not inner
        if fn in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            values = [self._truth(item) for item in arg]
            decisive = fn == "Fn::Or"  # True decides an Or, False decides an And
            if decisive in values:
                return decisive
            return None if None in values else not decisive
        return None

    def once_deployed(self, resource: dict) -> Optional[str]:
        """The resource's condition when it does not hold with the defaults, else None (exists now)."""
        name = resource.get("Condition")
        if not name or self.condition(name) is True:
            return None
        return str(name)

    def config_logical_id(self, expr: Any) -> Optional[str]:
        """The endpoint config an endpoint's ``EndpointConfigName`` points at, within this template."""
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            target = None
            if fn == "Ref":
                target = arg
            elif fn == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).partition(".")[0]
            if isinstance(target, str) and target in self.resources:
                return target
        name = self.value(expr)
        for logical_id, resource in self.resources.items():
            if (
                resource.get("Type") == "AWS::SageMaker::EndpointConfig"
                and name is not None
                and self.value(resource.get("Properties", {}).get("EndpointConfigName")) == name
            ):
                return logical_id
        return None


def loop_metadata(resource: Optional[dict]) -> dict:
    meta = ((resource or {}).get("Metadata") or {}).get(METADATA_KEY)
    return meta if isinstance(meta, dict) else {}


def as_number(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_count(value: Any) -> Optional[int]:
    number = as_number(value)
    return None if number is None else int(number)


def format_rate(value: float) -> str:
    """A unit price: cents when that is exact ($0.10), else every significant digit ($0.045)."""
    return f"${value:,.2f}" if round(value, 2) == value else f"${value:g}"
