"""The store interface: key-value state that steps share (caches, de-duplication).

walkerOS declares stores at the top of a flow (``stores``) and steps refer to
them by id (``$store.NAME``, a cache's ``store``). The operations are
walkerOS's: ``get``, ``set`` with an optional time to live in seconds, and
``delete``. Values are JSON-like; a store may copy them.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Annotated, Any, ClassVar, Final

from pydantic import AfterValidator, StrictStr

from collector.step import SettingsT, Step


class Store(Step[SettingsT]):
    """Base class for stores; subclass with ``type`` and ``Settings`` set."""

    kind: ClassVar[str] = "store"

    @abstractmethod
    def get(self, key: str) -> Any | None:
        """The value under ``key``, or None when missing or expired."""

    @abstractmethod
    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Keep ``value`` under ``key``; ``ttl`` seconds, or until deleted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget ``key`` (no error when it is missing)."""


STORE_REFERENCE: Final = "$store."


def store_id(reference: str) -> str:
    """The id a store setting names: ``ID``, or walkerOS's reference ``$store.ID``.

    walkerOS's bundler replaces ``$store.ID`` with the store itself; settings here
    take the id, so both spellings name the same store.
    """
    return reference.removeprefix(STORE_REFERENCE)


StoreId = Annotated[StrictStr, AfterValidator(store_id)]
"""A settings field naming one of the flow's ``stores`` (``"shared"`` or ``"$store.shared"``)."""
