"""Audit report of one model version: which data, code, metrics, fairness checks and approver produced it.

:mod:`.gather` reads the record from SageMaker, S3, CloudTrail and CloudFormation, one part of the report per
module (:mod:`.artefacts`, :mod:`.execution`, :mod:`.evaluation`, :mod:`.approvals`, :mod:`.model_card`,
:mod:`.deployment`; :mod:`.aws` holds the names, clients and plumbing they share), :mod:`.render` writes it as
Markdown, HTML and JSON, and :mod:`.cli` is the command (``python -m mlops_cli.audit``; its docstring lists what is
gathered from where).
"""

from pipeline_code.core.markdown import md_text

from .aws import SECTIONS, AuditError, Clients, Names
from .cli import build_parser, main
from .gather import check_credentials, find_package, gather, serving_package
from .render import render_html, render_json, render_markdown

__all__ = [
    "AuditError", "Clients", "Names", "build_parser", "check_credentials", "find_package", "gather", "main",
    "md_text", "render_html", "render_json", "render_markdown", "SECTIONS", "serving_package",
]
