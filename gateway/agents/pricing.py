"""Cost of one model call in USD (context-and-cron.md B.3).

Prices are USD per 1 000 000 tokens. `models.providers.<p>.models[].cost` fields win one by
one (an omitted field inherits, an explicit 0 is a real 0); the rest comes from the
`genai-prices` table shipped with the package (never fetched at run time). No price known →
no cost: the caller records the call as missing a cost rather than as free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from gateway.config.models import ModelCost, OpenClawConfig

log = logging.getLogger("agent/usage")

_FIELDS = ("input", "output", "cacheRead", "cacheWrite")


@dataclass(frozen=True)
class Counts:
    """Normalised token counts of one call (B.1): `input` excludes cache reads/writes."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def values(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cacheRead": self.cache_read,
            "cacheWrite": self.cache_write,
        }


@lru_cache(maxsize=256)
def _catalog(provider: str, model: str) -> Any:
    """genai-prices' ModelPrice for the model, or None (import is lazy: ~0.3 s)."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # pragma: no cover - a broken install only loses prices
        return None
    zero = Usage(input_tokens=0, output_tokens=0)
    for provider_id in (provider, None):
        try:
            return calc_price(zero, model_ref=model, provider_id=provider_id).model_price
        except (LookupError, ValueError):
            continue
    return None


def _rate(value: Any, prompt_tokens: int) -> float | None:
    """A flat or tiered catalog price at this prompt size."""
    if value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    base = getattr(value, "base", None)
    if base is None:
        return None
    rate = float(base)
    for tier in getattr(value, "tiers", []) or []:
        if prompt_tokens > int(tier.start):
            rate = float(tier.price)
    return rate


def _catalog_rates(provider: str, model: str, prompt_tokens: int) -> dict[str, float | None]:
    price = _catalog(provider, model)
    if price is None:
        return dict.fromkeys(_FIELDS)
    return {
        "input": _rate(price.input_mtok, prompt_tokens),
        "output": _rate(price.output_mtok, prompt_tokens),
        "cacheRead": _rate(price.cache_read_mtok, prompt_tokens),
        "cacheWrite": _rate(price.cache_write_mtok, prompt_tokens),
    }


def _configured(cost: ModelCost | None, prompt_tokens: int) -> dict[str, float | None]:
    if cost is None:
        return dict.fromkeys(_FIELDS)
    values: dict[str, float | None] = {
        "input": cost.input,
        "output": cost.output,
        "cacheRead": cost.cache_read,
        "cacheWrite": cost.cache_write,
    }
    for tier in cost.tiered_pricing or ():
        start = tier.range[0]
        end = tier.range[1] if len(tier.range) > 1 else None
        if prompt_tokens >= start and (end is None or prompt_tokens < end):
            for name, value in (
                ("input", tier.input),
                ("output", tier.output),
                ("cacheRead", tier.cache_read),
                ("cacheWrite", tier.cache_write),
            ):
                if value is not None:
                    values[name] = value
    return values


def rates(config: OpenClawConfig, provider: str, model: str, prompt_tokens: int) -> dict[str, Any]:
    """USD per 1M tokens per bucket; None where nothing is known."""
    entry = config.models.providers.get(provider)
    definition = next((m for m in entry.models if m.id == model), None) if entry else None
    configured = _configured(definition.cost if definition else None, prompt_tokens)
    catalog = _catalog_rates(provider, model, prompt_tokens)
    return {k: configured[k] if configured[k] is not None else catalog[k] for k in _FIELDS}


def cost(
    config: OpenClawConfig, provider: str, model: str, counts: Counts
) -> dict[str, float] | None:
    """`{input, output, cacheRead, cacheWrite, total}` in USD, or None when unpriced."""
    prompt = counts.input + counts.cache_read + counts.cache_write
    table = rates(config, provider, model, prompt)
    if table["input"] is None or table["output"] is None:
        return None
    # A cache bucket without its own price is billed like input (safe, never free).
    fallback = {"cacheRead": table["input"], "cacheWrite": table["input"]}
    out: dict[str, float] = {}
    for name, tokens in counts.values().items():
        rate = table[name] if table[name] is not None else fallback.get(name, 0.0)
        out[name] = round(tokens * float(rate) / 1_000_000, 9)
    out["total"] = round(sum(out.values()), 9)
    return out
