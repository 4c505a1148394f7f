"""Real TLS handshakes on loopback with the local CA as the only trust anchor."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
import trustme

from devhttps.base.errors import DevhttpsError
from devhttps.ca import authority as ca_mod

NAMES = ["localhost", "127.0.0.1", "::1", "192.168.1.20", "mybox.local"]


@pytest.fixture(scope="module")
def local_ca(tmp_path_factory) -> ca_mod.LocalCA:
    folder = tmp_path_factory.mktemp("ca") / "root"
    return ca_mod.load_or_create(folder, "test")[0]


def _serve_once(cert_pem: bytes, key_pem: bytes, tmp: Path) -> tuple[int, threading.Thread]:
    (tmp / "leaf.pem").write_bytes(cert_pem)
    (tmp / "leaf-key.pem").write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "leaf.pem", tmp / "leaf-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        with listener:
            listener.settimeout(10)
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
                except (ssl.SSLError, OSError):
                    pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return port, thread


def _client_handshake(ca: ca_mod.LocalCA, port: int, server_hostname: str) -> bytes:
    ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.recv(5)


@pytest.mark.parametrize("name", NAMES)
def test_handshake_succeeds_for_every_name_in_the_leaf(local_ca, tmp_path, name):
    leaf = local_ca.issue_leaf(NAMES)
    port, thread = _serve_once(leaf.cert_pem, leaf.key_pem, tmp_path)
    assert _client_handshake(local_ca, port, name) == b"hello"
    thread.join(5)


def test_handshake_fails_for_a_name_not_in_the_san(local_ca, tmp_path):
    leaf = local_ca.issue_leaf(["localhost"])
    port, thread = _serve_once(leaf.cert_pem, leaf.key_pem, tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|match"):
        _client_handshake(local_ca, port, "other.local")
    thread.join(5)


def test_handshake_fails_against_another_ca(local_ca, tmp_path):
    other = trustme.CA()
    leaf = other.issue_cert("localhost")
    port, thread = _serve_once(leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes(), tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        _client_handshake(local_ca, port, "localhost")
    thread.join(5)


@pytest.mark.parametrize("name", ["example.com", "8.8.8.8"])
def test_out_of_scope_leaf_is_refused_by_us(local_ca, name):
    with pytest.raises(DevhttpsError, match="name-constrained"):
        local_ca.issue_leaf(["localhost", name])


@pytest.mark.parametrize("name", ["example.com", "8.8.8.8"])
def test_out_of_scope_leaf_is_rejected_by_the_client_even_when_forced(local_ca, tmp_path, name):
    # Bypass our own refusal: sign the leaf with the raw key, as a thief would.
    forced = trustme.CA.from_pem(local_ca.cert_pem, local_ca.key_pem).issue_cert(name)
    port, thread = _serve_once(forced.cert_chain_pems[0].bytes(), forced.private_key_pem.bytes(), tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)permitted|constraint|subtree"):
        _client_handshake(local_ca, port, name)
    thread.join(5)


def test_unconstrained_ca_signs_any_name(tmp_path):
    ca = ca_mod.load_or_create(tmp_path / "u", "test", constrained=False)[0]
    assert ca.permitted is None
    leaf = ca.issue_leaf(["example.com"])
    port, thread = _serve_once(leaf.cert_pem, leaf.key_pem, tmp_path)
    assert _client_handshake(ca, port, "example.com") == b"hello"
    thread.join(5)
