"""Build a Gateway from settings and config, attaching each subsystem's services."""

from __future__ import annotations

from gateway.config.loader import LoadedConfig
from gateway.runtime import Gateway
from gateway.settings import RuntimeSettings

DEFAULT_MODEL = "openai/gpt-6-astra"


def primary_model(loaded: LoadedConfig) -> str:
    model = loaded.config.agents.defaults.model
    if isinstance(model, str):
        return model
    if model is not None and model.primary:
        return model.primary
    return DEFAULT_MODEL


def build_gateway(settings: RuntimeSettings, loaded: LoadedConfig) -> Gateway:
    import gateway.rpc  # noqa: F401  (registers the RPC methods)

    return Gateway(settings=settings, loaded=loaded)
