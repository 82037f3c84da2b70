"""Configuration: load the YAML named in cdk.json, validate it once, hand out frozen models."""

from .loader import ConfigError, load_config, parse_config
from .schema import AppConfig, EnvironmentConfig, ModelConfig, NetworkConfig

__all__ = ["AppConfig", "ConfigError", "EnvironmentConfig", "ModelConfig", "NetworkConfig", "load_config", "parse_config"]
