"""Where the engine finds flows: the newest version of each for new journeys, any version for running ones."""

from __future__ import annotations

from abc import ABC, abstractmethod

from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.rules.flows import Flow, Flows, Trigger


class FlowBook(ABC):
    """The flows new journeys start with, and the version a running journey started with."""

    @abstractmethod
    def current(self) -> Flows:
        """The newest version of every flow."""

    def for_trigger(self, trigger: Trigger) -> list[Flow]:
        """Enabled flows (newest versions) started by ``trigger``."""
        return self.current().for_trigger(trigger)

    def get(self, name: str) -> Flow | None:
        """The newest version of the flow called ``name``."""
        return self.current().get(name)

    @abstractmethod
    async def flow_of(self, conn: AsyncConnection, name: str, version: int) -> Flow | None:
        """The flow ``name`` as saved in ``version`` (0: the file), for a journey that started with it."""


class StaticFlows(FlowBook):
    """Flows from the file only (tests, tools): every journey reads the same version."""

    def __init__(self, flows: Flows) -> None:
        self._flows = flows

    def current(self) -> Flows:
        return self._flows

    async def flow_of(self, conn: AsyncConnection, name: str, version: int) -> Flow | None:
        return self._flows.get(name)
