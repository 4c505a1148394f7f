"""What a new user meets with bad input: each mistake is one clear error, at once, naming what was wrong."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stdout

import pytest
import trustme

from tests.conftest import ROOT, run_cli
from tests.serving import free_port


def _shadow_pillow(tmp_path) -> dict:
    """An environment in which `import PIL` fails, as on a machine without pillow."""
    shadow = tmp_path / "shadow" / "PIL"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named PIL')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(ROOT)])}


def test_qr_png_without_pillow_is_refused_before_anything_starts(tmp_path):
    png, svg = tmp_path / "code.png", tmp_path / "code.svg"
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "devhttps", "--json", "--demo", "--port", str(free_port()),
                          "--qr-png", str(png), "--qr-svg", str(svg), "--caroot", str(tmp_path / "ca")],
                         capture_output=True, text=True, env=_shadow_pillow(tmp_path), timeout=60)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 2 and [e["event"] for e in events] == ["error"], out.stdout
    assert "pillow" in events[0]["message"] and 'pip install "devhttps[png]"' in events[0]["hint"]
    assert not png.exists() and not svg.exists() and not (tmp_path / "ca").exists()  # nothing started
    assert time.monotonic() - started < 30


def test_upstream_port_zero_names_the_upstream_option():
    result = run_cli("--json", "--upstream", "0")
    error = result.events()[-1]
    assert result.code == 2 and "--upstream" in error["message"] and error["hint"] == "try --upstream 8080"


def test_port_zero_names_the_port_option():
    error = run_cli("--json", "--port", "0").events()[-1]
    assert "--port" in error["message"] and error["hint"] == "try --port 8443"


def test_upstream_that_is_not_a_url_or_port_says_which_forms_work():
    result = run_cli("--json", "--upstream", "not a url")
    error = result.events()[-1]
    assert result.code == 2
    assert "8080" in error["hint"] and "localhost:8080" in error["hint"] and "http://127.0.0.1:8080" in error["hint"]


@pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0, reason="needs root and unshare(1)")
def test_upstream_name_that_does_not_resolve_is_an_error_at_once(tmp_path):
    # In a network namespace of its own (loopback only) the resolver cannot be reached: no query leaves.
    started = time.monotonic()
    out = subprocess.run(["unshare", "--net", sys.executable, "-m", "devhttps", "--json", "--upstream",
                          "notaurl.invalid", "--wait", "120", "--caroot", str(tmp_path / "ca")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 1, out
    error = events[-1]
    assert error["event"] == "error" and "'notaurl.invalid' does not resolve" in error["message"]
    assert "--upstream takes a port" in error["hint"]
    assert time.monotonic() - started < 30  # not the --wait of 120 s
    assert not any(e["event"] == "progress" for e in events)


def test_bind_to_an_address_this_machine_lacks_says_so(tmp_path):
    # 192.0.2.99 (TEST-NET-1) is outside the CA's names too: the address problem must be what is said.
    result = run_cli("--json", "--demo", "--bind", "192.0.2.99", "--port", str(free_port()),
                     "--caroot", str(tmp_path / "ca"))
    error = result.events()[-1]
    assert result.code == 1 and error["event"] == "error"
    assert "192.0.2.99" in error["message"] and "not an address of this machine" in error["message"]
    assert "--bind" in error["hint"]


@pytest.fixture
def pair(tmp_path):
    leaf = trustme.CA().issue_cert("localhost")
    cert, key = tmp_path / "site.pem", tmp_path / "site-key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


def test_key_given_as_cert_names_the_file_and_what_it_holds(tmp_path, pair):
    cert, key = pair
    error = run_cli("--json", "--demo", "--cert", str(key), "--key", str(key), "--port", str(free_port())).events()[-1]
    assert str(key) in error["message"] and "--cert" in error["message"]
    assert "a private key" in error["message"] and "PRIVATE KEY" in error["message"]


def test_swapped_cert_and_key_are_called_swapped(pair):
    cert, key = pair
    error = run_cli("--json", "--demo", "--cert", str(key), "--key", str(cert), "--port", str(free_port())).events()[-1]
    assert "swapped" in error["hint"]


def test_a_key_file_that_holds_no_key_is_named(tmp_path, pair):
    cert, _ = pair
    port = str(free_port())
    error = run_cli("--json", "--demo", "--cert", str(cert), "--key", str(cert), "--port", port).events()[-1]
    assert str(cert) in error["message"] and "--key" in error["message"] and "CERTIFICATE" in error["message"]


def test_a_der_file_is_recognised_as_not_pem(tmp_path, pair):
    cert, key = pair
    der = tmp_path / "site.der"
    der.write_bytes(b"\x30\x82\x01\x0a" + bytes(range(256)))
    error = run_cli("--json", "--demo", "--cert", str(der), "--key", str(key), "--port", str(free_port())).events()[-1]
    assert str(der) in error["message"] and "no PEM block" in error["message"]


def _break_key(caroot):
    assert run_cli("--caroot", str(caroot), "ca", "create").code == 0
    key = caroot / "rootCA-key.pem"
    key.chmod(0o600)
    key.write_bytes(b"not a key\n")


def test_a_hint_that_suggests_a_command_carries_the_ca_folder_in_use(tmp_path):
    caroot = tmp_path / "my ca"
    _break_key(caroot)
    error = run_cli("--json", "--caroot", str(caroot), "ca", "export").events()[-1]
    assert "is not a PEM private key" in error["message"]
    assert f"`devhttps --caroot '{caroot}' ca create`" in error["hint"]


def test_ca_show_shows_the_certificate_when_only_the_key_is_broken(tmp_path):
    caroot = tmp_path / "ca"
    _break_key(caroot)
    result = run_cli("--json", "--caroot", str(caroot), "ca", "show")
    shown, error = result.events()
    assert result.code == 1
    assert shown["event"] == "ca" and shown["ca_fingerprint"] and shown["subject"]
    assert "is not a PEM private key" in shown["key_problem"] and error["event"] == "error"
    text = run_cli("--caroot", str(caroot), "ca", "show")
    assert "SHA-256" in text.out and "BROKEN" in text.out and "not a PEM private key" in text.err


@pytest.mark.parametrize("word, guess", [("tunnel", None), ("serv", "devhttps serve"), ("cA", None)])
def test_an_unknown_command_says_so_and_lists_the_commands(word, guess):
    result = run_cli("--json", word)
    error = result.events()[-1]
    assert result.code == 2 and error["message"].startswith(f"unknown command {word!r}")
    assert "serve, ca" in error["message"] and "unrecognized" not in error["message"]
    assert (guess in error["hint"]) if guess else "did you mean" not in error["hint"]


def test_an_option_value_is_not_taken_for_a_command():
    assert run_cli("--json", "--upstream", "notacommand:8080", "--wait", "nan").code == 2  # (--wait refused)


def _help(*words: str) -> str:
    from devhttps.cli import main

    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_:  # argparse's --help exits 0 by itself
        main([*words, "--help"])
    assert exit_.value.code == 0
    return out.getvalue()


@pytest.mark.parametrize("action", ["path", "show", "create", "export", "cert", "install", "uninstall"])
def test_every_ca_action_has_a_one_line_description(action):
    listing = _help("ca")
    own = _help("ca", action).split("\n\n")
    line = next(row for row in listing.splitlines() if row.strip().startswith(action + " "))
    assert len(line.split(None, 1)) == 2  # the action and its summary, in `ca --help`
    assert own[1].strip() and "\n" not in own[1].strip().replace("\n ", " ")  # a description atop its own help


def test_export_format_and_cert_names_are_explained_with_defaults():
    export = _help("ca", "export")
    assert "mobileconfig (an iOS profile)" in export and "default: pem" in export
    assert "myapp.local 192.168.1.20" in " ".join(_help("ca", "cert").split())
