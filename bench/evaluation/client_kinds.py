"""The kinds of model client a config may name (``api.client``): the one registry of clients.

The names live here, apart from the classes, so that validating a config needs no lm-eval (its
import costs ~0.8 s). Each class in ``bench.evaluation.client`` registers itself under its name with
``@client("kind")``; ``client_class(kind)`` imports that module at first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass(frozen=True)
class ClientKind:
    """One kind of client, as a config names it."""

    name: str
    chat: bool
    """Sends chat messages (model ``mode: chat``) rather than a prompt string (``completion``)."""


KINDS: dict[str, ClientKind] = {
    k.name: k
    for k in (
        ClientKind("local-completions", chat=False),
        ClientKind("local-chat-completions", chat=True),
        ClientKind("openai-chat-completions", chat=True),
    )
}

_CLASSES: dict[str, type[Any]] = {}
C = TypeVar("C", bound=type)


def client(kind: str) -> Callable[[C], C]:
    """Register the decorated class as the client of ``kind`` (a name in ``KINDS``); sets its
    ``kind``."""

    def register(cls: C) -> C:
        if kind not in KINDS:
            raise ValueError(
                f"client {cls.__name__}: kind {kind!r} is not in bench.evaluation.client_kinds.KINDS "
                f"(known: {', '.join(KINDS)}); add it there so configs may name it"
            )
        _CLASSES[kind] = cls
        # The class knows its kind (its warm-up asks whether it chats); setattr: type declares no kind.
        setattr(cls, "kind", kind)  # noqa: B010
        return cls

    return register


def client_class(kind: str) -> type[Any]:
    """The class registered for ``kind``."""
    import bench.evaluation.client  # noqa: F401  (its classes register on import)

    if kind not in _CLASSES:
        raise KeyError(f"no client class for kind {kind!r} (registered: {', '.join(_CLASSES)})")
    return _CLASSES[kind]


def registered() -> dict[str, type[Any]]:
    """Every registered class by kind (after ``bench.evaluation.client`` is imported)."""
    return dict(_CLASSES)
