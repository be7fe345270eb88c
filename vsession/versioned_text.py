"""Words people are shown and agree to or acknowledge (the consent text, the privacy notice):
versioned, and hashed into what is stored, so the record says exactly which words each person
saw. A changed text gets a new version; never edit one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class VersionedText:
    version: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.version}\n{self.text}".encode()).hexdigest()
