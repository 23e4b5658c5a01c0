"""promote: take a proof-of-concept Jupyter notebook to a production project."""

from __future__ import annotations

__version__ = "0.1.0"

from promote.api import Promotion, check, promote  # noqa: E402
from promote.errors import PromoteError  # noqa: E402

__all__ = ["Promotion", "PromoteError", "__version__", "check", "promote"]
