"""The gateway's one media store (created on first use, kept in `gateway.extensions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.media.store import MediaStore

if TYPE_CHECKING:
    from gateway.runtime import Gateway

EXTENSION = "media.store"


def media_store(gateway: Gateway) -> MediaStore:
    store = gateway.extensions.get(EXTENSION)
    if not isinstance(store, MediaStore):
        store = MediaStore(gateway.settings.state_dir / "media")
        gateway.extensions[EXTENSION] = store
    return store
