"""What the Templates API and the /studio page both do: read, preview, save, history, diff and rollback."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.clock import Clock
from recovery.errors import NotFound
from recovery.journeys import cart_rows
from recovery.render import template_rows
from recovery.render.preview import pick_sample, preview_off_loop
from recovery.render.samples import load_samples
from recovery.render.versions import (
    UnknownTemplate,
    current_source,
    editable_paths,
    live_sources,
    require_path,
    save_checked,
)


class UnknownCart(NotFound):
    """A preview asked for a real cart's data and no cart has that id."""


@dataclass(frozen=True, kw_only=True)
class TemplateDesk:
    """Template versions over one database and one templates folder.

    Raises ``TemplateRejected`` on a bad source and a ``NotFound`` (``UnknownTemplate``, ``UnknownCart``) for what
    does not exist; the routes turn them into HTTP answers.
    """

    engine: AsyncEngine
    templates_dir: Path
    clock: Clock
    # SMS previews count segments with short links of this service's real length ({public_url}/s/ + code).
    public_url: str = "http://127.0.0.1:8080"

    def known(self, path: str, *, create: bool = True) -> str:
        """``path`` when it is a template file or may become one (a saved new file); ``UnknownTemplate`` otherwise."""
        return require_path(self.templates_dir, path, create=create)

    def samples(self) -> list[str]:
        """Names of the sample carts a preview can use."""
        return [sample.name for sample in load_samples(self.templates_dir / "samples")]

    async def listing(self) -> list[dict[str, Any]]:
        """Every template file with its live version (0: the file)."""
        async with self.engine.connect() as conn:
            live = await template_rows.TEMPLATE_VERSIONS.live_versions(conn)
        rows = []
        # The files, and the templates created by a save (they exist only as versions).
        for path in sorted(set(editable_paths(self.templates_dir)) | set(live)):
            saved = live.get(path)
            rows.append(
                {
                    "path": path,
                    "version": saved.version if saved else 0,
                    "updated_at": saved.created_at.isoformat() if saved else None,
                    "updated_by": saved.created_by if saved else None,
                }
            )
        return rows

    async def read(self, path: str) -> dict[str, Any]:
        """The live source of ``path``."""
        source, version, at, by = await current_source(self.engine, self.templates_dir, self.known(path))
        return {
            "path": path,
            "source": source,
            "version": version,
            "updated_at": at.isoformat() if at else None,
            "updated_by": by,
        }

    async def versions(self, path: str) -> list[dict[str, Any]]:
        """Saved versions newest first, then the file as version 0."""
        async with self.engine.connect() as conn:
            saved = await template_rows.TEMPLATE_VERSIONS.history(conn, self.known(path))
        rows = [
            {
                "version": row.version,
                "created_at": row.created_at.isoformat(),
                "created_by": row.created_by,
                "comment": row.comment,
                "active": index == 0,
            }
            for index, row in enumerate(saved)
        ]
        default = {"version": 0, "created_at": None, "created_by": None, "comment": "file", "active": not saved}
        # A template created by a save has no file: no version 0.
        return [*rows, default] if (self.templates_dir / path).is_file() else rows

    async def source_of(self, path: str, version: int) -> str:
        """The source of one version (0: the file); ``UnknownTemplate`` when it was never saved."""
        if version == 0:
            return (self.templates_dir / self.known(path, create=False)).read_text(encoding="utf-8")
        async with self.engine.connect() as conn:
            found = await template_rows.TEMPLATE_VERSIONS.get_version(conn, self.known(path), version)
        if found is None:
            raise UnknownTemplate(f"'{path}' has no version {version}")
        return found.source

    async def preview(self, path: str, source: str, sample: str | None, cart_id: str | None) -> dict[str, Any]:
        """The message as it would render with ``source``, on a sample or a real cart's data."""
        self.known(path)
        chosen = pick_sample(self.templates_dir / "samples", sample, path.split("/", 1)[0])
        context = dict(chosen.context)
        if cart_id:
            context.update(await self._cart_context(cart_id))
        live = await live_sources(self.engine)
        return await preview_off_loop(
            self.templates_dir,
            live,
            path=path,
            source=source,
            context=context,
            store_locale=chosen.store_locale,
            public_url=self.public_url,
        )

    async def save(self, path: str, source: str, by: str, comment: str | None) -> int:
        """Save after the full check; ``TemplateRejected`` and nothing saved otherwise."""
        return await save_checked(
            self.engine, self.templates_dir, path=self.known(path), source=source, created_by=by, comment=comment,
            now=self.clock.now(),
        )  # fmt: skip

    async def rollback(self, path: str, version: int, by: str) -> int:
        """A new version with ``version``'s source."""
        return await self.save(path, await self.source_of(path, version), by, f"rollback to version {version}")

    async def diff(self, path: str, old: int, new: int) -> str:
        """A unified diff from version ``old`` to version ``new``."""
        before, after = await self.source_of(path, old), await self.source_of(path, new)
        lines = difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"{path} v{old}", f"{path} v{new}"
        )
        return "".join(lines)

    async def _cart_context(self, cart_id: str) -> dict[str, Any]:
        """The parts of a render context a real cart provides (cart, customer, payment, store)."""
        async with self.engine.connect() as conn:
            cart = (await cart_rows.load_carts(conn, [cart_id])).get(cart_id)
            if cart is None:
                raise UnknownCart(f"no cart '{cart_id}'")
            customer = (await cart_rows.load_customers(conn, [cart.customer_key])).get(cart.customer_key)
        found: dict[str, Any] = {
            "cart": cart.cart if isinstance(cart.cart, dict) else {},
            "store": cart.store,
            "checkout_step": cart.checkout_step,
        }
        if cart.payment:
            found["payment"] = cart.payment
        if customer is not None:
            found["customer"] = {
                "first_name": customer.first_name,
                "locale": customer.locale,
                "timezone": customer.timezone,
            }
        return found
