"""`setting(default, doc)`: a schema field with its one-line doc, shown by `--help`.

Its own module so that every schema module (schemas.py, schemas_runs.py) builds fields the
same way without importing each other.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def setting(default: Any, doc: str) -> Any:
    """A schema field with its one-line doc (shown by `--help`)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})
