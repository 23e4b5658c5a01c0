"""promote: take a proof-of-concept Jupyter notebook to a production project."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promote.errors import PromoteError

__version__ = "0.2.0"

if TYPE_CHECKING:
    from promote.api import Promotion, check, promote

__all__ = ["PromoteError", "Promotion", "__version__", "check", "promote"]


def __getattr__(name: str) -> Any:
    """``promote.promote`` and friends, imported on first use: importing promote stays cheap."""
    if name in {"Promotion", "check", "promote"}:
        from promote import api

        return getattr(api, name)
    raise AttributeError(f"module 'promote' has no attribute {name!r}")
