"""Start the configured chat channels with the gateway and expose their state."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.runtime import Gateway


def attach(gateway: Gateway) -> None:
    """Register each configured channel as a gateway service (none are implemented yet)."""
    return None
