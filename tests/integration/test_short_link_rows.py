"""Short links in the store: a stored code leads to its message's target until it expires (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.render import short_link_rows
from recovery.render.short_links import CODE_LENGTH, LINK_MAX_AGE, ShortLink, ShortLinker, is_code, new_code

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)


async def test_a_short_link_leads_to_its_target_until_it_expires(engine: AsyncEngine) -> None:
    """Stored with the message, found by its code; after the signed links' lifetime, found no more."""
    link = ShortLink(code=new_code(), message_id="j-1:sms", journey_id="j-1", target="https://shop.example/cart/1")
    async with engine.begin() as conn:
        await short_link_rows.store_links(conn, [link], NOW)
    async with engine.connect() as conn:
        found = await short_link_rows.find_link(conn, link.code, NOW + timedelta(days=1))
        assert found is not None and (found.message_id, found.target) == ("j-1:sms", "https://shop.example/cart/1")
        assert await short_link_rows.find_link(conn, link.code, NOW + LINK_MAX_AGE) is None
        assert await short_link_rows.find_link(conn, new_code(), NOW) is None
        assert await short_link_rows.find_link(conn, "../../etc", NOW) is None


def test_codes_are_random_ten_characters_of_base_62() -> None:
    """At least 48 bits: 62**10 codes; never derived from ids (two links to one target differ)."""
    linker = ShortLinker("https://r.example", message_id="j:s", journey_id="j")
    first, second = linker("https://shop.example/a"), linker("https://shop.example/a")
    assert first != second and first.startswith("https://r.example/s/")
    assert all(is_code(link.code) and len(link.code) == CODE_LENGTH for link in linker.links)
    assert 62**CODE_LENGTH > 2**48
