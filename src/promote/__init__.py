"""promote: take a proof-of-concept Jupyter notebook to a production project."""

from __future__ import annotations

__version__ = "0.2.0"

from promote.api import Promotion, check, promote
from promote.errors import PromoteError

__all__ = ["PromoteError", "Promotion", "__version__", "check", "promote"]
