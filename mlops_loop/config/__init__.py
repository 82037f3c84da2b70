"""Configuration: load the YAML named in cdk.json, validate it once, hand out frozen models.

Every value the CDK app reads comes from frozen pydantic models, validated once in ``app.py`` (through
:func:`load_config`). Field constraints carry the allowed values so that a misconfiguration fails synth with one message
naming the environment, the field and what is allowed. One module per part of the configuration: ``app_config``
(:class:`AppConfig`, the whole), ``environment``, ``model``, and the sections ``data_pipeline``, ``training``, ``gate``,
``monitoring``, ``serving``, ``network``, ``budget``; ``cross_checks`` holds the checks across models and
environments; ``loader`` reads the YAML and reports every problem at once.
"""

from .app_config import AppConfig
from .environment import EnvironmentConfig
from .loader import ConfigError, load_config, parse_config
from .model import ModelConfig
from .network import NetworkConfig

__all__ = ["AppConfig", "ConfigError", "EnvironmentConfig", "ModelConfig", "NetworkConfig", "load_config", "parse_config"]
