"""The fixtures the deploy handler's tests share - a moto world per module (``shared_clients``), the handler's clients
on it (``aws``), its approval ledger (``ledger``) and pipeline runs (``runs``) - defined in
tests/support/deploy_handler.py beside the helpers that build on them, offered here so that the tests of
pipeline_code/handlers/deploy_on_approval.py and of its parts (tests/handlers/deploy/) take them by name."""

from tests.support.deploy_handler import aws, ledger, runs, shared_clients  # noqa: F401 (fixtures)
