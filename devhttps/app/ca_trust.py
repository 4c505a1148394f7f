"""`devhttps ca install` / `ca uninstall`: the CA into this computer's trust stores, and out again.

The trust part does the work on plain values; this module picks the CA, the stores and the host, prints each
command that changes a store before it runs, and reports one line (or one ``--json`` event) per store action.
A store that fails does not stop the others; the command fails at the end, naming what failed.
"""

from __future__ import annotations

from collections.abc import Mapping

from devhttps.app import ca_setup
from devhttps.app.config import CAConfig
from devhttps.base.errors import DevhttpsError
from devhttps.ca import caroot
from devhttps.trust import host as trust_host
from devhttps.trust import stores as trust_stores
from devhttps.trust.cacert import TrustCA
from devhttps.trust.host import Host, Outcome
from devhttps.ui.console import UI

LOCALHOST_NOTE = (
    "Only localhost already counts as secure in browsers: this is for desktop browsers that open devhttps "
    "through a LAN name or address (https://NAME.local:8443/). Phones install the CA from the QR code."
)

_DONE = {"installed": "installed", "present": "already installed", "removed": "removed",
         "absent": "not there, nothing to remove", "skipped": "skipped", "failed": "FAILED"}
_MARKS = {"installed": ("✓", "green"), "present": ("✓", "green"), "removed": ("✓", "green"),
          "absent": ("·", "dim"), "skipped": ("-", "yellow"), "failed": ("✗", "red")}


def run(cfg: CAConfig, choice: caroot.CARootChoice, ui: UI, env: Mapping[str, str]) -> int:
    installing = cfg.action == "install"
    ca = _install_ca(choice, ui) if installing else _installed_ca(choice)
    host = trust_host.local(env, announce=lambda shown: ui.line(f"  $ {shown}"))
    stores = trust_stores.choose(cfg.stores, host.platform)
    verb = "Adding the local CA to" if installing else "Removing the local CA from"
    ui.line(f"{verb} this computer's trust stores (SHA-256 {ca.fingerprint})")
    failures: list[DevhttpsError] = []
    acted = False
    for store in stores:
        for outcome in _act(store, ca, host, installing, explicit=bool(cfg.stores)):
            _report(ui, cfg.action, outcome, ca)
            acted = acted or outcome.status not in ("skipped", "failed")
            if outcome.error is not None:
                failures.append(outcome.error)
    _finish(ui, installing, failures, acted)
    return 0


def _install_ca(choice: caroot.CARootChoice, ui: UI) -> TrustCA:
    ca, _ = ca_setup.obtain(choice, ui)  # like `mkcert -install`, the CA is created on first need
    return TrustCA(ca.cert_pem, ca.folder / caroot.ROOT_CERT, ca.fingerprint)


def _installed_ca(choice: caroot.CARootChoice) -> TrustCA:
    """The CA to take out of the stores: only its certificate is needed (also an expired one or a broken key),
    and none is created."""
    path = choice.path / caroot.ROOT_CERT
    try:
        return TrustCA.from_pem(path.read_bytes(), path)
    except (OSError, ValueError):
        raise DevhttpsError(f"could not uninstall the CA: there is no CA certificate at {path}",
                            "name the folder of the CA you installed: `devhttps --caroot DIR ca uninstall`") from None


def _act(store: trust_stores.Store, ca: TrustCA, host: Host, installing: bool, explicit: bool) -> list[Outcome]:
    action = store.install if installing else store.uninstall
    try:
        outcomes = action(ca, host)
    except DevhttpsError as exc:
        return [Outcome(store.name, store.describe, "", "failed", error=exc)]
    for outcome in outcomes:
        if outcome.status == "skipped" and explicit:  # asked for by name: not doing it is a failure
            verb = "install the CA in" if installing else "remove the CA from"
            outcome.status = "failed"
            outcome.error = DevhttpsError(f"could not {verb} the {outcome.label}: {outcome.note}", outcome.hint)
    return outcomes


def _report(ui: UI, action: str, outcome: Outcome, ca: TrustCA) -> None:
    fields: dict[str, object] = {"store": outcome.store, "label": outcome.label, "target": outcome.target,
                                 "status": outcome.status, "commands": outcome.commands,
                                 "ca_fingerprint": ca.fingerprint}
    if outcome.note:
        fields["note"] = outcome.note
    if outcome.error is not None:
        fields.update(message=outcome.error.message, hint=outcome.error.hint)
    elif outcome.hint and outcome.status == "skipped":
        fields["hint"] = outcome.hint
    if action == "install":
        ui.event("ca_install", _line(ui, outcome), **fields)
    else:
        ui.event("ca_uninstall", _line(ui, outcome), **fields)


def _line(ui: UI, outcome: Outcome) -> str:
    mark, colour = _MARKS[outcome.status]
    text = f"{outcome.label}: {_DONE[outcome.status]}"
    if outcome.target:
        text += f"  ({outcome.target})"
    if ui.color:
        text = f"{ui.style(mark, colour)} {text}"
    if outcome.note and outcome.status != "failed":
        text += f"\n    {outcome.note}"
    if outcome.status == "skipped" and outcome.hint:
        text += f"\n    {outcome.hint}"
    return text


def _finish(ui: UI, installing: bool, failures: list[DevhttpsError], acted: bool) -> None:
    if failures:
        for problem in failures[:-1]:
            ui.warning(problem.message, problem.hint)
        raise failures[-1]
    if installing and not acted:
        raise DevhttpsError("could not install the CA: this computer has none of the trust stores devhttps knows",
                            "export it with `devhttps ca export -o ca.pem` and import it in the browser's "
                            "certificate settings")
    if installing:
        ui.line("Restart the browsers to pick the CA up; undo with `devhttps ca uninstall`.")
        ui.line(LOCALHOST_NOTE)
    else:
        ui.line("Restart the browsers to forget the CA. The CA itself stays (`devhttps ca path`).")
