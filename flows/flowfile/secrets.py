"""Where ``$secret.NAME`` values come from at run time: the environment, then a directory.

walkerOS's server bundles read a secret from ``process.env``. Docker and
Kubernetes also mount secrets as files (``/run/secrets/NAME``), which keeps
them out of the process environment; both are read here, the environment
first. ``FLOWS_SECRETS_DIR`` names another directory.

A value is read when a flow is loaded, never per event, and never appears in
an error: errors name the secret and where it is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "NO_SECRET_SOURCE",
    "SECRETS_DIR_ENV",
    "SecretSource",
    "SecretUnreadableError",
]

SECRETS_DIR_ENV: Final = "FLOWS_SECRETS_DIR"
"""Environment variable naming the secrets directory (default :data:`DEFAULT_SECRETS_DIR`)."""
DEFAULT_SECRETS_DIR: Final = Path("/run/secrets")
"""Where Docker (``secrets:``) and Kubernetes (a mounted Secret volume, by convention) put them."""


class SecretUnreadableError(OSError):
    """A secret's file exists but cannot be read; says which file, never what is in it."""


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Looks a secret up by name; ``available=False`` is a place without secrets (a browser)."""

    env: Mapping[str, str]
    directory: Path | None
    available: bool = True

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SecretSource:
        """The run-time source: ``env`` (default ``os.environ``) and its secrets directory."""
        environment: Mapping[str, str] = os.environ if env is None else env
        configured = environment.get(SECRETS_DIR_ENV)
        return cls(environment, Path(configured) if configured else DEFAULT_SECRETS_DIR)

    def where(self, name: str) -> str:
        """Where ``name`` is looked for, for a hint (paths only, no values)."""
        if self.directory is None:
            return f"set {name} in the environment"
        return (
            f"set {name} in the environment or write it to {self.directory / name} "
            f"(the directory is set by {SECRETS_DIR_ENV})"
        )

    def get(self, name: str) -> str | None:
        """The secret's value, or None when it is not set or empty (both count as missing).

        A file's content loses one trailing newline (``echo`` and editors add
        one); nothing else is stripped, as a secret may end in spaces.
        """
        value = self.env.get(name)
        if value:
            return value
        if self.directory is None:
            return None
        file = self.directory / name
        try:
            text = file.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SecretUnreadableError(f"cannot read {file}: {reason}") from None
        text = text.removesuffix("\r\n") if text.endswith("\r\n") else text.removesuffix("\n")
        return text or None


NO_SECRET_SOURCE: Final = SecretSource({}, None, available=False)
"""No secrets at all: walkerOS's non-deferred resolution (a web flow, sent to browsers)."""
