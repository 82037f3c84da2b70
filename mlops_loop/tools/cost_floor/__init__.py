"""The always-on monthly cost floor of every environment, read from the synthesized templates.

:mod:`.prices` holds the prices, :mod:`.template` reads a template as it would deploy with the
parameter defaults, :mod:`.compute` and :mod:`.fixed` price the endpoints and the small always-on
items, :mod:`.report` puts an environment's floor together (and compares two assemblies),
:mod:`.render` writes text, Markdown or JSON, and :mod:`.cli` is the command
(``python -m mlops_loop.tools.cost_floor``; its docstring says what the floor is).
"""

from .cli import main
from .model import EnvironmentFloor, Line, NotACloudAssembly
from .prices import FREE_DASHBOARDS_PER_ACCOUNT, PRICES, Price
from .render import render_markdown, render_text, to_json
from .report import DEFAULT_HOURS_PER_MONTH, compare, floor_report
from .template import INSTANCE_DIMENSION, METADATA_KEY, PROVISIONED_CONCURRENCY_DIMENSION

__all__ = [
    "DEFAULT_HOURS_PER_MONTH", "EnvironmentFloor", "FREE_DASHBOARDS_PER_ACCOUNT", "INSTANCE_DIMENSION", "Line",
    "METADATA_KEY", "NotACloudAssembly", "PRICES", "PROVISIONED_CONCURRENCY_DIMENSION", "Price", "compare",
    "floor_report", "main", "render_markdown", "render_text", "to_json",
]
