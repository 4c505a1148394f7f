"""What happens to the served certificate while devhttps runs, as the user sees it: the user's pair reloaded (or
refused, the old one staying in service), a new devhttps leaf, the machine's addresses changing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from devhttps.ui.console import UI

RELOAD_FAILED_HINT = ("fix the files (a PEM certificate and its matching key); devhttps loads them as soon as they "
                      "change again")


def _day(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d")


class CertLog:
    def __init__(self, ui: UI) -> None:
        self.ui = ui

    def reloaded(self, cert: Path, key: Path, cert_fingerprint: str) -> None:
        self.ui.notice("cert_reloaded", self.ui.style(f"certificate {cert} reloaded: new connections use it", "green"),
                       cert=str(cert), key=str(key), cert_fingerprint=cert_fingerprint)

    def reload_failed(self, cert: Path, key: Path, message: str) -> None:
        text = f"{message}; the previous certificate stays in service"
        if self.ui.json_mode:
            self.ui.event("cert_reload_failed", cert=str(cert), key=str(key), message=text, hint=RELOAD_FAILED_HINT)
        else:
            self.ui.warning(text, RELOAD_FAILED_HINT)

    def addresses_changed(self, added: Sequence[str], removed: Sequence[str], primary: str | None) -> None:
        parts = [f"+{a}" for a in added] + [f"-{r}" for r in removed]
        what = ", ".join(parts) if parts else f"the address to advertise is now {primary or 'localhost'}"
        self.ui.notice("addresses_changed", self.ui.style(f"network changed: {what}", "cyan"),
                       added=list(added), removed=list(removed), primary=primary)

    def leaf_issued(self, reason: str, names: Sequence[str], not_after: dt.datetime) -> None:
        why = "renewed before it ends" if reason == "renewal" else "issued for the new addresses"
        self.ui.notice("leaf_issued",
                       self.ui.style(f"certificate {why} (valid until {_day(not_after)}): {', '.join(names)}",
                                     "green"),
                       reason=reason, names=list(names), not_after=not_after.isoformat())

    def leaf_failed(self, message: str, hint: str) -> None:
        self.ui.warning(f"{message}; the previous certificate stays in service", hint)
