"""The scheduled monitor's moto world (tests/support/remote_world.py) as the ``aws`` fixture of these tests, on the
process's shared clients (``remote_clients``)."""

from tests.support.remote_world import aws, remote_clients  # noqa: F401 - the fixtures, found here by pytest
