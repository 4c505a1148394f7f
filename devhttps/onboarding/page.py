"""The onboarding page a phone sees over plain HTTP: HTML only, no I/O.

One platform's steps per page, chosen on the server from the User-Agent, so the
page is right before (or without) any script. Inline CSS and one inline script,
both allowed by hash in the Content-Security-Policy; no external assets.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape

IOS, ANDROID, DESKTOP = "ios", "android", "desktop"
PLATFORMS = (IOS, ANDROID, DESKTOP)


@dataclass(frozen=True)
class PageInput:
    """Everything the page shows, already decided by the hook."""

    platform: str  # IOS, ANDROID or DESKTOP
    ca_name: str
    fingerprint: str
    constrained: bool
    here_url: str  # this page's own http:// URL ("" when the Host header is unusable)
    probe_url: str  # https://HOST:PORT/__devhttps/probe ("" to skip the check)
    app_url: str  # https://HOST:PORT{app_path} ("" when unknown)
    needs_safari: bool = False  # iOS browser that cannot install profiles
    firefox: bool = False  # Firefox for Android ignores user CAs until told otherwise
    maybe_ipad: bool = False  # Safari on a Mac, or iPadOS pretending to be one
    crt_filename: str = "ca.crt"  # the name Android saves the download under


_CSS = """
:root{color-scheme:light dark;--fg:#16181d;--bg:#fff;--mut:#5b6270;--box:#f1f3f6;--acc:#0b62d6;--warn:#8a4b00}
@media (prefers-color-scheme:dark){
:root{--fg:#eceef2;--bg:#15171b;--mut:#a3a9b5;--box:#23262d;--acc:#6aa8ff;--warn:#ffb35c}}
body{margin:0;font:17px/1.5 -apple-system,system-ui,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:34rem;margin:0 auto;padding:1.2rem 1rem 3rem}
h1{font-size:1.4rem;line-height:1.25;margin:.2rem 0 .6rem}h2{font-size:1.1rem;margin:1.6rem 0 .4rem}
p,li{margin:.35rem 0}ol{padding-left:1.4rem}a{color:var(--acc)}
.status{padding:.7rem .9rem;border-radius:.6rem;background:var(--box)}
.status.ok{outline:2px solid #1a9a4a}.status.no{outline:2px solid var(--warn)}
.button{display:inline-block;margin:.3rem 0;padding:.65rem 1.1rem;border-radius:.6rem;background:var(--acc);
color:#fff;text-decoration:none;font-weight:600}
.path{font-weight:600}.note,.small{color:var(--mut);font-size:.93rem}.warn{color:var(--warn);font-weight:600}
code{font:15px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.fp{display:block;padding:.6rem .8rem;border-radius:.6rem;background:var(--box);overflow-wrap:anywhere}
"""

# Reads its inputs from data-* attributes so the script itself never changes
# (its hash is in the Content-Security-Policy).
_JS = """
(function () {
  var main = document.getElementById("onb"), status = document.getElementById("status");
  var probe = main.getAttribute("data-probe"), app = main.getAttribute("data-app");
  if (main.hasAttribute("data-maybe-ipad") && navigator.maxTouchPoints > 1) {
    location.replace("/?platform=ios");  // iPadOS Safari sends a Mac User-Agent
    return;
  }
  if (!probe || !window.fetch) { return; }
  var busy = false, done = false;
  function say(text, cls) { status.textContent = text; status.className = "status " + cls; }
  function check() {
    if (busy || done || document.visibilityState === "hidden") { return; }
    busy = true;
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) { ctl.abort(); } }, 4000);
    fetch(probe + "?t=" + Date.now(), {mode: "cors", cache: "no-store", credentials: "omit",
                                       signal: ctl ? ctl.signal : undefined})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); }
        done = true; say("This device trusts the certificate. Opening the app\\u2026", "ok");
        location.replace(app); })
      .catch(function () { say("Not trusted yet. Follow the steps below; this page checks again by itself.", "no"); })
      .then(function () { clearTimeout(timer); busy = false; });
  }
  check();
  setInterval(check, 5000);
  document.addEventListener("visibilitychange", check);
  window.addEventListener("pageshow", check);
  window.addEventListener("focus", check);
})();
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
    "connect-src https:; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def render(page: PageInput) -> bytes:
    """The whole HTML document for one platform."""
    e = _attr
    attrs = f' data-probe="{e(page.probe_url)}" data-app="{e(page.app_url)}"'
    if page.maybe_ipad:
        attrs += " data-maybe-ipad"
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>Trust this computer</title><style>{_CSS}</style></head><body>",
        f'<main id="onb"{attrs}>',
        "<h1>Use the microphone over a secure connection</h1>",
        "<p>Install this computer's certificate once. After that, the same QR code opens the app directly.</p>",
        _status(page),
        _STEPS[page.platform](page),
        _certificate(page),
        _other_devices(page.platform),
        f"</main><script>{_JS}</script></body></html>\n",
    ]
    return "".join(parts).encode("utf-8")


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _status(page: PageInput) -> str:
    if not page.probe_url:
        return '<p id="status" class="status">Follow the steps below, then open this page again.</p>'
    link = f'<a href="{_attr(page.app_url)}">{escape(page.app_url)}</a>'
    return (
        '<p id="status" class="status" role="status">Checking whether this device trusts the certificate\u2026</p>'
        f"<noscript><p>Already done? Open {link}</p></noscript>"
    )


def _ios(page: PageInput) -> str:
    safari = ""
    if page.needs_safari:
        here = escape(page.here_url or "this page")
        safari = (f'<p class="warn">Open this page in Safari: other browsers on iPhone and iPad '
                  f"cannot install profiles. Copy this address into Safari: <code>{here}</code></p>")
    return (
        f'<section data-platform="ios"><h2>iPhone and iPad</h2>{safari}<ol>'
        '<li><a class="button" href="/ca.mobileconfig">Download the profile</a><br>'
        "Tap <b>Allow</b>, then <b>Close</b>.</li>"
        '<li>Open <span class="path">Settings \u2192 Profile Downloaded \u2192 Install</span>, '
        "enter your passcode and tap <b>Install</b> again.<br>"
        '<span class="note">Not listed? Look in Settings \u2192 General \u2192 VPN &amp; Device Management.</span></li>'
        '<li>Turn on full trust: <span class="path">Settings \u2192 General \u2192 About \u2192 '
        f"Certificate Trust Settings</span> \u2192 switch on <b>{escape(page.ca_name)}</b>.</li>"
        "<li>Come back to this page: it opens the app by itself.</li></ol></section>"
    )


def _android(page: PageInput) -> str:
    # Firefox for Android ignores user-installed CAs until its hidden switch is on:
    # https://github.com/mozilla-mobile/fenix/issues/3728
    firefox = (
        '<li>Firefox only trusts it after one more switch: <span class="path">Settings \u2192 About Firefox</span>, '
        'tap the Firefox logo five times, then <span class="path">Settings \u2192 Secret Settings \u2192 '
        "Use third party CA certificates</span>.</li>"
    ) if page.firefox else ""
    tail = "" if page.firefox else (
        '<p class="note">Firefox needs one more switch: Settings \u2192 About Firefox, tap the logo five times, '
        "then Settings \u2192 Secret Settings \u2192 Use third party CA certificates.</p>"
    )
    return (
        '<section data-platform="android"><h2>Android</h2><ol>'
        '<li><a class="button" href="/ca.crt">Download the certificate</a><br>'
        '<span class="note">Android only saves the file; a message that it cannot be installed here '
        "is expected.</span></li>"
        '<li>Open <span class="path">Settings \u2192 Security \u2192 Encryption &amp; credentials \u2192 '
        "Install a certificate \u2192 CA certificate</span>, tap <b>Install anyway</b> and choose the downloaded "
        f"<b>{escape(page.crt_filename)}</b>.<br>"
        '<span class="note">The menus differ between makers: '
        'search Settings for \u201cCA certificate\u201d.</span></li>'
        f"{firefox}<li>Come back to this page: it opens the app by itself.</li></ol>{tail}</section>"
    )


def _desktop(page: PageInput) -> str:
    return (
        '<section data-platform="desktop"><h2>On a phone</h2>'
        "<p>Scan the QR code shown in the terminal with the phone's camera and follow the steps there.</p>"
        "<h2>On this computer</h2><p>Download "
        '<a href="/ca.pem">ca.pem</a> or <a href="/ca.crt">ca.crt</a> and add it as a trusted authority:</p><ul>'
        "<li>macOS: <code>sudo security add-trusted-cert -d -r trustRoot "
        "-k /Library/Keychains/System.keychain ca.pem</code></li>"
        "<li>Windows: <code>certutil -user -addstore Root ca.crt</code></li>"
        # Chrome and Chromium on Linux read the user's NSS database, not the system store (certutil comes with
        # Debian/Ubuntu's libnss3-tools, Fedora's nss-tools); curl, Python and the like read the system store.
        '<li>Linux, Chrome/Chromium: <code>certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n devhttps -i ca.pem</code>'
        "</li>"
        "<li>Linux, system (curl, Python, …): <code>sudo cp ca.pem /usr/local/share/ca-certificates/devhttps.crt "
        "&amp;&amp; sudo update-ca-certificates</code></li>"
        '<li>Firefox: <span class="path">Settings \u2192 Privacy &amp; Security \u2192 Certificates \u2192 '
        "View Certificates \u2192 Authorities \u2192 Import</span></li></ul></section>"
    )


_STEPS = {IOS: _ios, ANDROID: _android, DESKTOP: _desktop}


def _certificate(page: PageInput) -> str:
    if page.constrained:
        scope = ("It is name-constrained: it can only vouch for local names and private addresses, "
                 "never for public websites.")
    else:
        scope = ('<span class="warn">It is not name-constrained: it could vouch for any website. '
                 "Install it only if this is your own computer.</span>")
    return (
        f"<h2>Check the certificate</h2><p>Name: <b>{escape(page.ca_name)}</b></p>"
        "<p>Its SHA-256 fingerprint must match the one in the terminal:</p>"
        f'<code class="fp" id="fingerprint">{escape(page.fingerprint)}</code><p class="small">{scope}</p>'
    )


def _other_devices(platform: str) -> str:
    names = {IOS: "iPhone or iPad", ANDROID: "Android", DESKTOP: "computer"}
    links = [f'<a href="/?platform={p}">{names[p]}</a>' for p in PLATFORMS if p != platform]
    sep = " \u00b7 "
    return f'<p class="small">Steps for another device: {sep.join(links)}</p>'
