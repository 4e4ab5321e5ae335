"""What lint reports: a finding, located by its path in the flow document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .schema import Loc

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One thing lint found, located by its path in the document, e.g. ("nodes", "main", "next")."""

    loc: Loc
    severity: Severity
    message: str
