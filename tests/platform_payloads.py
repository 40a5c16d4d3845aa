"""Realistic platform payloads, shaped like the platforms' documented webhook bodies (shared by tests)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

SHOPIFY_CHECKOUT: dict[str, Any] = {
    "id": 981820079255243537,
    "token": "123123123",
    "cart_token": "eeafa272cebfd4b22385bc4b645e762c",
    "email": "claire.martin@example.com",
    "gateway": None,
    "buyer_accepts_marketing": True,
    "buyer_accepts_sms_marketing": False,
    "sms_marketing_phone": None,
    "created_at": "2026-11-20T09:00:00+01:00",
    "updated_at": "2026-11-20T09:04:12+01:00",
    "landing_site": None,
    "note": None,
    "note_attributes": [],
    "referring_site": None,
    "shipping_lines": [],
    "taxes_included": True,
    "total_weight": 400,
    "currency": "EUR",
    "presentment_currency": "EUR",
    "completed_at": None,
    "closed_at": None,
    "user_id": None,
    "location_id": None,
    "source_identifier": None,
    "source_url": None,
    "device_id": None,
    "phone": "+33612345678",
    "customer_locale": "fr-FR",
    "line_items": [
        {
            "applied_discounts": [],
            "discount_allocations": [],
            "key": "c1",
            "fulfillment_service": "manual",
            "gift_card": False,
            "grams": 200,
            "presentment_title": "Sac en cuir",
            "presentment_variant_title": "Noir",
            "product_id": 632910392,
            "properties": None,
            "quantity": 1,
            "requires_shipping": True,
            "sku": "SAC-01",
            "tax_lines": [],
            "taxable": True,
            "title": "Sac en cuir",
            "variant_id": 808950810,
            "variant_title": "Noir",
            "variant_price": "149.90",
            "vendor": "Atelier",
            "line_price": "149.90",
            "price": "149.90",
        },
        {
            "key": "c2",
            "product_id": 632910393,
            "quantity": 2,
            "sku": "",
            "title": "Ceinture",
            "variant_id": 808950811,
            "price": "19.95",
            "line_price": "39.90",
        },
    ],
    "name": "#981820079255243537",
    "source": None,
    "abandoned_checkout_url": "https://shop.example.com/548380009/checkouts/123123123/recover?key=example-secret-token",
    "discount_codes": [],
    "tax_lines": [],
    "source_name": "web",
    "total_discounts": "0.00",
    "total_line_items_price": "189.80",
    "total_price": "189.80",
    "total_tax": "31.63",
    "subtotal_price": "189.80",
    "total_duties": None,
    "billing_address": None,
    "shipping_address": None,
    "customer": {
        "id": 603851970716743426,
        "email": "claire.martin@example.com",
        "accepts_marketing": True,
        "first_name": "Claire",
        "last_name": "Martin",
        "state": "enabled",
        "verified_email": True,
        "phone": None,
        "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
        "sms_marketing_consent": None,
        "tags": "",
        "currency": "EUR",
    },
}

SHOPIFY_ORDER: dict[str, Any] = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "app_id": None,
    "browser_ip": None,
    "buyer_accepts_marketing": True,
    "cart_token": "eeafa272cebfd4b22385bc4b645e762c",
    "checkout_id": 901414060,
    "checkout_token": "123123123",
    "confirmed": True,
    "contact_email": "claire.martin@example.com",
    "created_at": "2026-11-20T10:15:00+01:00",
    "currency": "EUR",
    "current_total_price": "189.80",
    "email": "claire.martin@example.com",
    "financial_status": "paid",
    "name": "#9999",
    "order_number": 1234,
    "processed_at": "2026-11-20T10:15:00+01:00",
    "total_price": "189.80",
    "customer": {"id": 603851970716743426, "email": "claire.martin@example.com", "first_name": "Claire"},
    "line_items": [{"id": 866550311766439020, "price": "149.90", "quantity": 1, "sku": "SAC-01", "title": "Sac"}],
}

STRIPE_PAYMENT_FAILED: dict[str, Any] = {
    "id": "evt_3MtwBwLkdIwHu7ix0SNM0dXb",
    "object": "event",
    "api_version": "2024-06-20",
    "created": 1763629200,
    "livemode": False,
    "pending_webhooks": 1,
    "request": {"id": "req_ZtOlQ4vWyYkF3j", "idempotency_key": "7c0b2b2b-2f3b"},
    "type": "payment_intent.payment_failed",
    "data": {
        "object": {
            "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "object": "payment_intent",
            "amount": 18980,
            "amount_received": 0,
            "capture_method": "automatic",
            "currency": "eur",
            "customer": "cus_NffrFeUfNV2Hib",
            "description": "Commande 123123123",
            "last_payment_error": {
                "charge": "ch_3MtwBwLkdIwHu7ix0snN0B15",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "message": "Your card has insufficient funds.",
                "payment_method": {
                    "id": "pm_1MtwBwLkdIwHu7ixXPdx1Yus",
                    "object": "payment_method",
                    "billing_details": {
                        "email": "claire.martin@example.com",
                        "name": "Claire Martin",
                        "phone": None,
                    },
                    "card": {"brand": "visa", "last4": "9995", "exp_month": 8, "exp_year": 2027},
                    "type": "card",
                },
                "type": "card_error",
            },
            "metadata": {"cart_id": "123123123", "restore_url": "https://shop.example.com/cart/restore/123123123"},
            "payment_method_types": ["card"],
            "receipt_email": None,
            "status": "requires_payment_method",
        }
    },
}

STRIPE_SESSION_EXPIRED: dict[str, Any] = {
    "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "object": "event",
    "api_version": "2024-06-20",
    "created": 1763632800,
    "type": "checkout.session.expired",
    "data": {
        "object": {
            "id": "cs_test_a1b2c3",
            "object": "checkout.session",
            "after_expiration": None,
            "amount_subtotal": 18980,
            "amount_total": 18980,
            "cancel_url": "https://shop.example.com/cart",
            "currency": "eur",
            "customer_details": {"email": "claire.martin@example.com", "name": "Claire Martin", "phone": None},
            "customer_email": None,
            "expires_at": 1763632800,
            "locale": "fr",
            "metadata": {"cart_id": "cart-77"},
            "mode": "payment",
            "payment_status": "unpaid",
            "status": "expired",
            "url": None,
        }
    },
}

STRIPE_CHARGE_REFUNDED: dict[str, Any] = {
    "id": "evt_1Nh2fp2eZvKYlo2CUdjnwX6D",
    "object": "event",
    "created": 1763719200,
    "type": "charge.refunded",
    "data": {
        "object": {
            "id": "ch_3MmlLrLkdIwHu7ix0snN0B15",
            "object": "charge",
            "amount": 18980,
            "amount_captured": 18980,
            "amount_refunded": 4990,
            "currency": "eur",
            "metadata": {"cart_id": "123123123", "order_id": "820982911946154508"},
            "payment_intent": "pi_3MmlLrLkdIwHu7ix0uke3Ezy",
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [{"id": "re_1Nh2fp", "amount": 4990, "currency": "eur", "status": "succeeded"}],
                "has_more": False,
            },
        }
    },
}

WOO_ORDER: dict[str, Any] = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "order_key": "wc_order_58d2d042d1d",
    "created_via": "checkout",
    "version": "9.4.2",
    "status": "pending",
    "currency": "EUR",
    "date_created": "2026-11-20T09:00:00",
    "date_created_gmt": "2026-11-20T08:00:00",
    "date_modified": "2026-11-20T09:05:00",
    "date_modified_gmt": "2026-11-20T08:05:00",
    "discount_total": "0.00",
    "discount_tax": "0.00",
    "shipping_total": "10.00",
    "shipping_tax": "0.00",
    "cart_tax": "0.00",
    "total": "59.90",
    "total_tax": "0.00",
    "prices_include_tax": True,
    "customer_id": 0,
    "customer_ip_address": "",
    "customer_user_agent": "",
    "customer_note": "",
    "billing": {
        "first_name": "Lucas",
        "last_name": "Bernard",
        "company": "",
        "address_1": "12 rue de la Paix",
        "address_2": "",
        "city": "Paris",
        "state": "",
        "postcode": "75002",
        "country": "FR",
        "email": "lucas.bernard@example.com",
        "phone": "+33 6 98 76 54 32",
    },
    "shipping": {"first_name": "Lucas", "last_name": "Bernard", "city": "Paris", "country": "FR"},
    "payment_method": "stripe",
    "payment_method_title": "Carte bancaire",
    "transaction_id": "",
    "date_paid": None,
    "date_paid_gmt": None,
    "date_completed": None,
    "date_completed_gmt": None,
    "cart_hash": "f2a9c1e0b6d84f0aa1bb",
    "meta_data": [{"id": 13106, "key": "marketing_consent", "value": "yes"}],
    "line_items": [
        {
            "id": 315,
            "name": "Bougie parfumée",
            "product_id": 93,
            "variation_id": 0,
            "quantity": 2,
            "tax_class": "",
            "subtotal": "49.90",
            "subtotal_tax": "0.00",
            "total": "49.90",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
            "sku": "BOUGIE-1",
            "price": 24.95,
            "image": {"id": "94", "src": "https://shop.example.com/wp-content/uploads/bougie.jpg"},
        }
    ],
    "tax_lines": [],
    "shipping_lines": [{"id": 317, "method_title": "Colissimo", "method_id": "flat_rate", "total": "10.00"}],
    "fee_lines": [],
    "coupon_lines": [],
    "refunds": [],
    "payment_url": "https://shop.example.com/checkout/order-pay/727/?pay_for_order=true&key=wc_order_58d2d042d1d",
    "is_editable": True,
    "needs_payment": True,
    "needs_processing": True,
}

SEGMENT_TRACK: dict[str, Any] = {
    "anonymousId": "507f191e810c19729de860ea",
    "context": {
        "ip": "8.8.8.8",
        "library": {"name": "analytics.js", "version": "2.11.1"},
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "traits": {"email": "claire.martin@example.com", "first_name": "Claire", "email_consent": True},
        "userAgent": "Mozilla/5.0",
    },
    "event": "Cart Viewed",
    "messageId": "ajs-next-1763629200000-4a8f",
    "originalTimestamp": "2026-11-20T08:00:00.000Z",
    "receivedAt": "2026-11-20T08:00:01.000Z",
    "sentAt": "2026-11-20T08:00:00.500Z",
    "timestamp": "2026-11-20T08:00:00.000Z",
    "type": "track",
    "userId": "cust-7",
    "properties": {
        "cart_id": "seg-cart-1",
        "currency": "EUR",
        "url": "https://shop.example.com/cart/seg-cart-1",
        "products": [
            {
                "product_id": "507f1f77bcf86cd799439011",
                "sku": "SAC-01",
                "name": "Sac en cuir",
                "price": 149.9,
                "quantity": 1,
                "url": "https://shop.example.com/p/sac",
                "image_url": "https://shop.example.com/img/sac.jpg",
            }
        ],
    },
}


def variant(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with top-level changes; a value ``...`` removes the key."""
    copied = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            copied.pop(key, None)
        else:
            copied[key] = value
    return copied


def fresh_id(prefix: str) -> str:
    """A unique platform id, so tests sharing a broker never collide."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def body(payload: dict[str, Any]) -> bytes:
    """Compact JSON bytes, as platforms send them."""
    return json.dumps(payload, separators=(",", ":")).encode()
