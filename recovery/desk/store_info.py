"""A store's name and payment methods as the desk shows them, read defensively from ``stores.<id>`` settings.

The ``stores`` settings block may be absent (then the store is shown by its id and no payment method is
known); a key missing on a listed store falls back to ``stores.default`` (contract ``stores.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_STORE = "default"


@dataclass(frozen=True, kw_only=True)
class StoreInfo:
    """What the desk says about a store: ``payment_methods`` is ``None`` when unknown (no suggestion limit)."""

    id: str
    name: str
    payment_methods: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, str]:
        """The contract's ``Task.store``."""
        return {"id": self.id, "name": self.name}


def _key(entry: Any, name: str) -> Any:
    """``entry.name`` or ``entry["name"]``, whichever the settings object offers; ``None`` when absent."""
    if entry is None:
        return None
    if isinstance(entry, Mapping):
        return entry.get(name)
    return getattr(entry, name, None)


class StoreDirectory:
    """Looks stores up by id in a ``stores`` mapping (or nothing: every store is known by its id only)."""

    def __init__(self, stores: Any = None) -> None:
        stores = getattr(stores, "root", stores)  # a pydantic RootModel holds its mapping in ``root``
        self._stores: Mapping[str, Any] = stores if isinstance(stores, Mapping) else {}

    @classmethod
    def from_settings(cls, settings: Any) -> StoreDirectory:
        """From ``settings.stores`` when that block exists."""
        return cls(getattr(settings, "stores", None))

    def _lookup(self, store_id: str, name: str) -> Any:
        value = _key(self._stores.get(store_id), name)
        return value if value is not None else _key(self._stores.get(DEFAULT_STORE), name)

    def info(self, store_id: str | None) -> StoreInfo:
        """The store's name (its id when none is configured) and its payment methods, if listed."""
        store_id = store_id or DEFAULT_STORE
        name = self._lookup(store_id, "name")
        methods = self._lookup(store_id, "payment_methods")
        return StoreInfo(
            id=store_id,
            name=str(name) if name else store_id,
            payment_methods=tuple(str(m) for m in methods) if methods is not None else None,
        )
