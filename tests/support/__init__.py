"""Helpers shared by test packages: scenario configs and builders. Test modules import from here, never
from another test module or a conftest."""
