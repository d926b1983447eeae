"""The benchmark traffic: a realistic shop mix over many interleaved users.

Page views, product views, orders with three nested products and logins,
spread over ``users`` distinct users in random (seeded) order, so identify
de-duplication sees interleaved identities as a server does.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

SHOP_DESTINATION: dict[str, Any] = {
    "settings": {
        "consent": {"analytics": "Analytics", "marketing": "Advertising"},
        "integrations": {"All": True, "Mixpanel": False},
        "identify": {"map": {"traits": {"map": {"email": "user.email", "plan": "user.plan"}}}},
    },
    "mapping": {
        "page": {
            "view": {
                "silent": True,
                "settings": {
                    "page": {
                        "map": {
                            "name": "data.title",
                            "category": "globals.pagegroup",
                            "properties": {"map": {"path": "data.id", "title": "data.title"}},
                        }
                    }
                },
            }
        },
        "product": {
            "view": {
                "name": "Product Viewed",
                "data": {
                    "map": {
                        "product_id": "data.id",
                        "name": "data.name",
                        "price": "data.price",
                        "currency": {"key": "globals.currency", "value": "EUR"},
                    }
                },
            }
        },
        "order": {
            "complete": {
                "name": "Order Completed",
                "data": {
                    "map": {
                        "order_id": "data.id",
                        "total": "data.total",
                        "currency": "data.currency",
                        "products": {
                            "loop": [
                                "nested",
                                {
                                    "map": {
                                        "product_id": "data.id",
                                        "name": "data.name",
                                        "price": "data.price",
                                    }
                                },
                            ]
                        },
                    }
                },
            }
        },
        "user": {"login": {"name": "Signed In", "data": {"map": {"method": "data.method"}}}},
    },
}

_PRODUCTS: list[dict[str, Any]] = [
    {"id": f"sku-{n}", "name": f"Product {n}", "price": 10 + n, "color": "black"} for n in range(50)
]


def _user(n: int) -> dict[str, Any]:
    return {
        "id": f"user-{n}",
        "session": f"session-{n}",
        "email": f"user{n}@example.com",
        "plan": "pro" if n % 3 else "free",
    }


def shop_events(
    count: int, users: int, seed: int = 7, *, distinct_users: bool = False
) -> Iterator[dict[str, Any]]:
    """``count`` events: 40% page view, 35% product view, 15% order, 10% login.

    ``distinct_users`` gives every event a user of its own (user n for event n,
    ``users`` is then ignored): the worst case for per-identity state.
    """
    rng = random.Random(seed)
    consent = {"analytics": True, "marketing": False}
    for index in range(count):
        n = rng.randrange(users)
        if distinct_users:
            n = index
        kind = rng.random()
        base: dict[str, Any] = {
            "id": f"evt-{index}",
            "timestamp": 1_700_000_000_000 + index,
            "user": _user(n),
            "consent": consent,
            "globals": {"pagegroup": "shop", "currency": "EUR"},
        }
        if kind < 0.40:
            base.update(name="page view", data={"id": f"/p/{index % 100}", "title": "Shop"})
        elif kind < 0.75:
            product = _PRODUCTS[index % len(_PRODUCTS)]
            base.update(name="product view", data=dict(product))
        elif kind < 0.90:
            items = [_PRODUCTS[(index + k) % len(_PRODUCTS)] for k in range(3)]
            base.update(
                name="order complete",
                data={
                    "id": f"order-{index}",
                    "total": sum(p["price"] for p in items),
                    "currency": "EUR",
                },
                nested=[{"entity": "product", "data": dict(p)} for p in items],
            )
        else:
            base.update(name="user login", data={"method": "password"})
        yield base
