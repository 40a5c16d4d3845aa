"""What templates see: event data as read-only records whose shop links refuse to print untracked."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation

from recovery.events import is_http_url

# Keys ending in "url" are shop links a shopper clicks; these are not: images are loaded, not clicked,
# the unsubscribe link is already the service's own signed link, and the terms of sale are a legal
# mention the footer prints as they are (never counted as a click).
_UNTRACKED_URL_KEYS = frozenset({"image_url", "unsubscribe_url", "terms_url"})

# Documented optional fields get a None default so StrictUndefined only fires on real typos.
_DEFAULTS: dict[str, dict[str, object]] = {
    "cart": {"shipping_cost": None, "missing_for_free_shipping": None},
    "cart.items[]": {"image_url": None, "url": None},
    "customer": {"first_name": None, "locale": None, "timezone": None},
    "payment": {"reason": "other", "method": None, "provider_code": None, "amount": None},
    "offer": {"code": None, "percent": None, "expires_at": None},
    "seller": {"name": None, "address": None},
    "store": {
        "terms_url": None,
        "support_phone": None,
        "payment_methods": (),
        "free_shipping_threshold": None,
        "reply_to": None,
        "stop_text": None,
        "locale": None,
    },
}

# Amounts arrive as JSON numbers or strings; as Decimal, "price * quantity" is arithmetic, not repetition.
_MONEY_SHAPES = frozenset(
    {
        "cart.value",
        "cart.shipping_cost",
        "cart.items[].unit_price",
        "payment.amount",
        "cart.missing_for_free_shipping",
        "store.free_shipping_threshold",
    }
)

# Keys whose None means "use the default" rather than "absent".
_NEVER_NONE = ("store", "customer", "seller")


class UntrackedLinkError(Exception):
    """A template printed a shop link without ``| track``."""


class RawLink:
    """A shop link that only ``| track`` may turn into text."""

    __slots__ = ("path", "url")

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path

    def _refuse(self) -> str:
        raise UntrackedLinkError(f"link '{self.path}' must go through the tracker: write {{{{ {self.path} | track }}}}")

    def __str__(self) -> str:
        return self._refuse()

    def __html__(self) -> str:
        return self._refuse()

    def __bool__(self) -> bool:
        return bool(self.url)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawLink) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __repr__(self) -> str:
        return f"RawLink({self.path})"


class Record:
    """Read-only attribute view of a JSON object; ``cart.items`` is the items, not ``dict.items``."""

    __slots__ = ("_data", "record_path")

    def __init__(self, data: Mapping[str, object], path: str) -> None:
        self._data = data
        self.record_path = path

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> object:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<{self.record_path}>"


def _amount(value: object, path: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            pass
    raise ValueError(f"{path}: {value!r} is not an amount")


def to_template_value(value: object, path: str, shape: str | None = None) -> object:
    """Wrap JSON-like data: objects become ``Record``, lists tuples, shop links ``RawLink``."""
    shape = path if shape is None else shape
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        merged = {**_DEFAULTS.get(shape, {}), **value}
        wrapped: dict[str, object] = {}
        for key, item in merged.items():
            name = str(key)
            child = f"{path}.{name}" if path else name
            if isinstance(item, str) and name.endswith("url") and name not in _UNTRACKED_URL_KEYS:
                wrapped[name] = RawLink(item, child)
            elif name == "image_url" and not is_http_url(item):
                wrapped[name] = None  # an image only from an http(s) address, whatever was stored before the check
            else:
                wrapped[name] = to_template_value(item, child, f"{shape}.{name}" if shape else name)
        return Record(wrapped, path)
    if isinstance(value, list | tuple):
        return tuple(to_template_value(entry, f"{path}[{i}]", f"{shape}[]") for i, entry in enumerate(value))
    if shape in _MONEY_SHAPES and value is not None:
        return _amount(value, path)
    if isinstance(value, str) and shape.endswith("expires_at"):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{path}: {value!r} is not an ISO 8601 date and time") from None
    return value


def _store_view(store: object, seller: object) -> dict[str, object]:
    """The ``store`` record templates see; an id alone (older samples, saved contexts) becomes a record.

    A store without a configured name is named after ``seller.name``, else its id: only for previews and
    dry runs, since ``recovery check`` / ``recovery run`` refuse to send for a shop without a name.
    """
    view: dict[str, object] = dict(store) if isinstance(store, Mapping) else {"id": str(store or "default")}
    seller_data = seller if isinstance(seller, Mapping) else {}
    view["id"] = str(view.get("id") or "default")
    view["name"] = view.get("name") or seller_data.get("name") or view["id"]
    view["address"] = view.get("address") or seller_data.get("address")
    return view


def _missing_for_free_shipping(cart: object, store: Mapping[str, object]) -> Decimal | None:
    """What the cart still lacks for free shipping (0 when reached); None without a threshold."""
    threshold = store.get("free_shipping_threshold")
    if threshold is None or not isinstance(cart, Mapping) or cart.get("value") is None:
        return None
    missing = _amount(threshold, "store.free_shipping_threshold") - _amount(cart.get("value"), "cart.value")
    return max(missing, Decimal(0))


def build_context(context: Mapping[str, object]) -> dict[str, object]:
    """The variables a message template sees, with documented defaults filled in."""
    store = _store_view(context.get("store"), context.get("seller"))
    values: dict[str, object] = {
        "customer": {},
        "payment": None,
        "offer": None,
        "callback_url": None,
        **{key: value for key, value in context.items() if value is not None or key not in _NEVER_NONE},
        "store": store,
        # ``seller`` is the store's name and address under their older name (saved template versions use it).
        "seller": {"name": store["name"], "address": store["address"]},
    }
    cart = values.get("cart")
    if isinstance(cart, Mapping):
        values["cart"] = {**cart, "missing_for_free_shipping": _missing_for_free_shipping(cart, store)}
    if values.get("feedback_url") is None and isinstance(cart, Mapping):
        # One click on an answer is the answer: the tracked click records it, the cart greets the shopper.
        values["feedback_url"] = cart.get("restore_url")
    root = to_template_value(values, "")
    assert isinstance(root, Record)
    return {name: root[name] for name in root}
