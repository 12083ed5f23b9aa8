"""Keeping secrets out of logs, events, messages and listings: what counts as one, and how it is hidden."""

import re
from collections.abc import Iterable, Mapping

MARKER = "[redacted]"
# Configuration values under such names are secrets whatever their length.
SECRET_NAME = re.compile(r"(password|passwd|secret|token|api_?key|private_?key|credentials?)$", re.IGNORECASE)
# Every configuration value is treated as a secret, but one shorter than this (a port, "db") would hide
# ordinary words wherever it appears, and tells little.
SHORTEST = 4


def secrets_in(configuration: Mapping[str, object], *passwords: str | None) -> list[str]:
    """Return what to hide, longest first: the passwords and the configuration's values."""
    found = {p for p in passwords if p}
    for key, value in configuration.items():
        if isinstance(value, str) and (len(value) >= SHORTEST or SECRET_NAME.search(str(key))):
            found.add(value)
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in a text with the marker (secrets longest first, as secrets_in gives them)."""
    for secret in secrets:
        text = text.replace(secret, MARKER)
    return text


def scrub_values(value: object, secrets: list[str]) -> object:
    """Scrub every text inside a JSON value, keys included."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_values(item, secrets) for item in value]
    if isinstance(value, dict):
        return {scrub(str(key), secrets): scrub_values(item, secrets) for key, item in value.items()}
    return value


def mask(value: str) -> str:
    """Hide a secret in a listing, keeping only enough to recognise it (never more than a quarter of it)."""
    shown = min(2, len(value) // 4)
    return value[:shown] + "…" + f"({len(value)} chars)" if value else ""
