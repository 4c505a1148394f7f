"""ngrok's error codes in plain words, each with the next step (https://ngrok.com/docs/errors/)."""

from __future__ import annotations

import re

from devhttps.base.errors import DevhttpsError

TOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"
SAVE_TOKEN = f"get your authtoken at {TOKEN_URL}, then save it with `ngrok config add-authtoken TOKEN` " \
             "(or set NGROK_AUTHTOKEN in the environment)"
SESSION_LIMIT = "108"

_MESSAGES = {
    "4018": ("ngrok needs an authtoken, and none was found", SAVE_TOKEN),
    "105": ("ngrok refused the authtoken: it is not valid (mistyped, or revoked)",
            f"copy it again from {TOKEN_URL} and save it with `ngrok config add-authtoken TOKEN`"),
    "107": ("ngrok refused the authtoken: it was reset or revoked",
            f"copy the current one from {TOKEN_URL} and save it with `ngrok config add-authtoken TOKEN`"),
    SESSION_LIMIT: ("another ngrok agent is already online with this account (the free plan allows one at a time)",
                    "stop the other agent (`pkill ngrok`, or the dashboard's Agents page), then start devhttps "
                    "again"),
    "121": ("the ngrok agent is too old for ngrok's service",
            "update it with `ngrok update`, or remove it so that devhttps installs a current one "
            "(or point --ngrok-path at a newer agent)"),
    "8012": ("ngrok could not reach devhttps on this machine",
             "check that nothing blocks loopback connections, then start devhttps again"),
}
_CODE = re.compile(r"ERR_NGROK_(\d+)")
_OFFLINE = re.compile(r"no such host|network is unreachable|connection refused|i/o timeout|failed to dial|"
                      r"tls handshake timeout|dial tcp|lookup ", re.IGNORECASE)


def error_code(text: str) -> str | None:
    match = _CODE.search(text)
    return match[1] if match else None


def explain(text: str) -> DevhttpsError:
    """The DevhttpsError for what the agent said (its error line, or pyngrok's message around it)."""
    code = error_code(text)
    if code in _MESSAGES:
        message, hint = _MESSAGES[code]
        return DevhttpsError(f"could not open the ngrok tunnel: {message} (ERR_NGROK_{code})", hint)
    if _OFFLINE.search(text):
        return DevhttpsError("could not open the ngrok tunnel: ngrok's service cannot be reached from this machine",
                             "check the internet connection (and any proxy or firewall), or use local mode "
                             "(`devhttps`) when the phone is on the same network")
    detail = _first_line(text)
    suffix = f" (ERR_NGROK_{code})" if code else ""
    return DevhttpsError(f"could not open the ngrok tunnel: {detail}{suffix}",
                         "run again with --debug for the agent's log, or try local mode (`devhttps`)")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "the agent failed"
    return line[:300]
