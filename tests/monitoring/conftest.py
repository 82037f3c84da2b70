"""The scheduled monitor's moto world (tests/support/remote_world.py) as the ``aws`` fixture of these tests."""

from tests.support.remote_world import aws  # noqa: F401 - the fixture, found here by pytest
