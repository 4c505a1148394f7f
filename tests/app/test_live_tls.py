"""The session's side of certificates without a restart, on a real proxy with real handshakes: addresses that
change (through the address-discovery interface), the leaf's renewal (through the clock), the user's pair
followed on disk, and what the user is told."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import ssl

import pytest
import trustme
from cryptography import x509

from devhttps.app import live_tls
from devhttps.app import tls as certs
from devhttps.app.config import Globals, ServeConfig
from devhttps.app.local import LocalSession
from devhttps.base.errors import DevhttpsError
from devhttps.ca import authority
from devhttps.net import lan
from devhttps.ui.cert_log import CertLog
from devhttps.ui.console import UI
from tests.app.test_json_contract import check, documented
from tests.proxy.conftest import Harness
from tests.proxy.http_client import Conn
from tests.supervise.test_certwatch import Pair, der

HOST = "mybox"


@pytest.fixture(scope="module")
def local_ca(tmp_path_factory) -> authority.LocalCA:
    return authority.load_or_create(tmp_path_factory.mktemp("ca") / "root", "test", hostname=HOST)[0]


class Network:
    """The address-discovery interface as a test drives it: a Wi-Fi interface whose addresses it sets."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.wired: tuple[str, ...] = ()
        self.default = "wlan0"

    def __call__(self) -> lan.Discovered:
        return [lan.Interface("wlan0", self.addresses), lan.Interface("eth0", self.wired),
                lan.Interface("lo", ("127.0.0.1",))], self.default


def plan_for(discovered: lan.Discovered) -> lan.LanPlan:
    return lan.choose(*discovered, hostname=HOST)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


class Live:
    """A proxy serving a devhttps leaf for ``network``, and the NetworkFollower of a session."""

    def __init__(self, tmp_path, local_ca: authority.LocalCA, network: Network, **follower) -> None:
        self.network, self.clock, self.out = network, Clock(), io.StringIO()
        self.ca = local_ca
        plan = plan_for(network())
        leaf = certs.issue(local_ca, plan, set())
        self.harness = Harness(Pair.__new__(Pair))
        self.harness.certs.cert, self.harness.certs.key = self._files(tmp_path, local_ca, plan)
        self.harness.start_proxy()
        self.harness.proxy.set_ssl_context(leaf.context)
        tls = certs.TLSSetup(leaf.context, ssl.create_default_context(), local_ca, leaf.names, (), leaf)
        self.announced: list[tuple[lan.LanPlan, tuple[str, ...]]] = []
        self.notices: list[list[tuple[str, str]]] = []  # those of each announcement
        session = LocalSession(ServeConfig(), Globals(), UI(), {})  # what a session says about the addresses
        follower = {"notices": session._network_notices, **follower}
        self.follower = live_tls.NetworkFollower(
            self.harness.proxy, tls, plan, hooks=live_tls.Hooks(network, self.clock, poll_interval=0.01),
            plan_for=plan_for, asked=set(), announce=self._announce, log=CertLog(UI(json_mode=True, out=self.out)),
            **follower)

    @staticmethod
    def _files(tmp_path, local_ca, plan):
        leaf = local_ca.issue_leaf(plan.cert_names)
        (tmp_path / "c.pem").write_bytes(leaf.cert_pem)
        (tmp_path / "k.pem").write_bytes(leaf.key_pem)
        return tmp_path / "c.pem", tmp_path / "k.pem"

    async def _announce(self, plan: lan.LanPlan, names: tuple[str, ...], notices: list[tuple[str, str]]) -> None:
        self.announced.append((plan, names))
        self.notices.append(notices)

    def poll(self) -> None:
        """One look at the addresses."""
        self.harness.run(self.follower.poll())

    def settle(self) -> None:
        """Two looks: a change is acted on when two looks in a row see it."""
        self.poll()
        self.poll()

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def connect(self, name: str) -> Conn:
        """A new handshake that verifies the served certificate against the CA for ``name``."""
        ctx = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        return Conn(self.harness.port, ctx, server_name=name)


@pytest.fixture
def live(tmp_path, local_ca):
    lv = Live(tmp_path, local_ca, Network("192.168.1.20"))
    yield lv
    lv.harness.close()


def test_a_new_address_gets_a_leaf_that_covers_it_and_a_new_announcement(live):
    before = live.connect("192.168.1.20")
    assert before.request().status == 200
    live.poll()
    assert live.events() == [] and live.announced == []  # nothing changed: nothing said, nothing issued
    live.network.addresses = ("10.9.8.7",)  # another Wi-Fi
    live.poll()
    assert live.events() == [] and live.announced == []  # seen once: not yet (a Wi-Fi switch passes through none)
    live.poll()
    changed, issued = live.events()
    assert changed == {"event": "addresses_changed", "added": ["10.9.8.7"], "removed": ["192.168.1.20"],
                       "primary": "10.9.8.7"}
    assert issued["event"] == "leaf_issued" and issued["reason"] == "addresses" and "10.9.8.7" in issued["names"]
    check(live.events(), documented())
    [(plan, names)] = live.announced
    assert plan.primary == "10.9.8.7" and "10.9.8.7" in names and "192.168.1.20" not in names
    assert live.connect("10.9.8.7").request().status == 200  # a new handshake: the new leaf covers it
    with pytest.raises(ssl.SSLCertVerificationError):
        live.connect("192.168.1.20")  # and no longer the address this machine left
    assert before.request().status == 200  # the open connection keeps its certificate


def test_another_default_route_announces_the_new_address_with_the_same_leaf(live):
    live.network.wired = ("192.168.2.30",)  # a cable plugged in: a new address, the Wi-Fi still advertised
    live.settle()
    assert [e["event"] for e in live.events()] == ["addresses_changed", "leaf_issued"]
    assert live.announced == []  # the URLs are the Wi-Fi's still: no new banner
    live.out.truncate(0), live.out.seek(0)
    leaf = live.follower.leaf
    live.network.default = "eth0"  # the default route moves to the cable: the same names, another QR address
    live.settle()
    assert live.events() == [{"event": "addresses_changed", "added": [], "removed": [], "primary": "192.168.2.30"}]
    assert live.announced[-1][0].primary == "192.168.2.30" and live.follower.leaf is leaf


def test_the_leaf_is_renewed_before_it_ends_and_only_once(live):
    old = live.follower.leaf
    live.clock.now = old.not_after - (old.not_after - old.not_before) * (certs.RENEW_FRACTION * 1.01)
    live.poll()
    assert live.events() == []  # a little more than the fraction left: not yet
    live.clock.now = old.not_after - (old.not_after - old.not_before) * (certs.RENEW_FRACTION * 0.99)
    live.poll()
    [issued] = live.events()
    assert issued["event"] == "leaf_issued" and issued["reason"] == "renewal"
    check([issued], documented())
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # issued for the clock's date, not today's
    served = x509.load_der_x509_certificate(Conn(live.harness.port, ctx).sock.getpeercert(binary_form=True))
    assert served.not_valid_before_utc == (live.clock.now - authority.CLOCK_SKEW).replace(microsecond=0)
    assert dt.datetime.fromisoformat(issued["not_after"]) == live.follower.leaf.not_after > old.not_after
    live.poll()
    assert len(live.events()) == 1 and live.announced == []  # renewed: not again, and the URLs did not change


@pytest.mark.parametrize(("left", "due"), [(0.5, False), (0.34, False), (0.33, True), (0.0, True), (-1, True)])
def test_needs_new_leaf_at_a_third_of_the_lifetime(left, due):
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    leaf = certs.LeafSetup(ssl.create_default_context(), (), start, start + dt.timedelta(days=300))
    assert certs.needs_new_leaf(leaf, leaf.not_after - dt.timedelta(days=300) * left) is due
    assert certs.needs_new_leaf(leaf, start - dt.timedelta(days=1))  # before it starts: not usable either


def test_an_unreadable_look_at_the_network_changes_nothing(live, tmp_path):
    def broken() -> lan.Discovered:
        raise OSError("interfaces unavailable")

    live.follower.hooks = live_tls.Hooks(broken, live.clock)
    live.poll()
    assert live.events() == [] and live.announced == []


def test_the_interfaces_can_come_from_a_file(tmp_path):
    path = tmp_path / "interfaces.json"
    path.write_text(json.dumps({"interfaces": {"wlan0": ["192.168.5.5"], "tun0": ["100.64.1.2"]},
                                "default": "wlan0"}))
    hooks = live_tls.Hooks.from_env({live_tls.INTERFACES_VARIABLE: str(path)})
    interfaces, default = hooks.discover()
    assert default == "wlan0" and lan.Interface("wlan0", ("192.168.5.5",)) in interfaces
    assert hooks.poll_interval == live_tls.POLL_INTERVAL
    for wrong in ('["not", "the", "shape"]', '{"interfaces": {"wlan0": "192.168.5.5"}}', "{"):
        path.write_text(wrong)
        with pytest.raises(ValueError):
            hooks.discover()
    assert live_tls.Hooks.from_env({}).discover is lan.discover


def test_the_user_s_pair_reloaded_and_refused_as_events_and_as_lines(tmp_path):
    ca = trustme.CA()
    first = ca.issue_cert("localhost")
    pair = Pair(tmp_path / "certs", first)
    harness = Harness(pair)
    harness.start_proxy()
    outs = {True: io.StringIO(), False: io.StringIO()}
    try:
        for json_mode, out in outs.items():
            log = CertLog(UI(json_mode=json_mode, out=out, err=out))
            harness.call(lambda log=log: harness.loop.create_task(
                live_tls.follow_pair(harness.proxy, pair.cert, pair.key, log, lambda ctx: [("a check", "its fix")])))
        good = ca.issue_cert("localhost")
        pair.put(good)
        assert harness.wait_for(lambda: all("reloaded" in o.getvalue() for o in outs.values()))
        pair.put(ca.issue_cert("localhost"), key_of=good)
        assert harness.wait_for(lambda: all("does not belong" in o.getvalue() for o in outs.values()))
    finally:
        harness.close()
    events = [json.loads(line) for line in outs[True].getvalue().splitlines()]
    check(events, documented())
    reloaded, warning, failed = events
    assert reloaded == {"event": "cert_reloaded", "cert": str(pair.cert), "key": str(pair.key),
                        "cert_fingerprint": hashlib.sha256(der(good)).digest().hex(":").upper()}
    assert warning["event"] == "warning" and warning["message"] == "a check"
    assert failed["event"] == "cert_reload_failed" and "previous certificate stays in service" in failed["message"]
    text = outs[False].getvalue()
    assert f"certificate {pair.cert} reloaded: new connections use it" in text
    assert "warning: could not load certificate pair" in text and "hint: fix the files" in text


def test_following_that_ends_by_itself_is_said_and_serving_goes_on():
    out = io.StringIO()
    cfg = ServeConfig()
    session = LocalSession(cfg, Globals(), UI(out=out, err=out), {})
    ended = asyncio.new_event_loop()
    try:
        task = ended.create_future()
        task.set_exception(RuntimeError("the watch thread died"))
        session._follower_ended(task)
        quiet = ended.create_future()
        quiet.cancel()
        session._follower_ended(quiet)
    finally:
        ended.close()
    assert out.getvalue() == ("warning: stopped following certificate and address changes: RuntimeError: the watch "
                              "thread died\nhint: restart devhttps to follow them again (with --debug for details)\n")


PUBLIC_NOTICE = "not in the certificate: public addresses need an unconstrained CA"


def test_a_move_to_a_public_address_is_said_in_the_new_banner_and_a_lost_lan_too(live):
    live.network.addresses = ("203.0.113.7",)  # a public address: the name-constrained CA may not sign it
    live.settle()
    [notices] = live.notices
    assert [m for m, _ in notices] == [f"203.0.113.7 {PUBLIC_NOTICE} (`devhttps --caroot DIR ca create "
                                       "--unconstrained`)"]
    assert "203.0.113.7" not in live.follower.leaf.names
    live.out.truncate(0), live.out.seek(0)
    live.network.addresses = ()  # no network at all: the same URLs (the public one was never shown), a warning
    live.settle()
    assert len(live.announced) == 1
    assert [e["message"].split(":")[0] for e in live.events() if e["event"] == "warning"] == ["no LAN address found"]
    live.network.addresses = ("192.168.1.20",)  # back: a new banner with nothing to say
    live.settle()
    assert live.notices[-1] == [] and len(live.announced) == 2


def test_a_public_address_added_beside_the_advertised_one_is_a_warning(live):
    live.network.wired = ("203.0.113.9",)
    live.settle()
    assert live.announced == []  # the QR address did not change
    assert [(e["event"], e.get("message", "").split(" not in")[0]) for e in live.events()] == [
        ("addresses_changed", ""), ("warning", "203.0.113.9")]


def test_interfaces_listed_in_another_order_are_no_change(live):
    live.network.wired = ("192.168.2.30",)
    live.settle()
    live.out.truncate(0), live.out.seek(0)
    network = live.network

    def reordered() -> lan.Discovered:
        interfaces, default = network()
        return list(reversed(interfaces)), default

    live.follower.hooks = live_tls.Hooks(reordered, live.clock)
    live.settle()
    assert live.events() == [] and live.announced == []


def test_a_wi_fi_switch_through_no_address_is_one_leaf_and_one_banner(live):
    live.network.addresses = ()  # the old network left: one look sees nothing
    live.poll()
    live.network.addresses = ("10.9.8.7",)  # the new one joined
    live.settle()
    assert [e["event"] for e in live.events()] == ["addresses_changed", "leaf_issued"]
    [(plan, _)] = live.announced
    assert plan.primary == "10.9.8.7"


def test_with_bind_the_addresses_are_not_looked_at_but_the_leaf_is_renewed(tmp_path, local_ca):
    looks = []

    def network() -> lan.Discovered:
        looks.append(1)
        return Network("192.168.1.20")()

    live = Live(tmp_path, local_ca, network, follow_addresses=False)
    try:
        looks.clear()
        old = live.follower.leaf
        live.clock.now = old.not_after
        live.settle()
        assert looks == [] and [e["reason"] for e in live.events()] == ["renewal"]
    finally:
        live.harness.close()


def test_the_interfaces_file_must_be_a_small_regular_file(tmp_path):
    hooks = live_tls.Hooks.from_env({live_tls.INTERFACES_VARIABLE: str(tmp_path)})
    with pytest.raises(ValueError, match="not a regular file"):
        hooks.discover()
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"interfaces": {"wlan0": ["192.168.5.5"]}, "pad": "x" * 70_000}))
    with pytest.raises(ValueError, match="more than the 64 KiB"):
        live_tls.Hooks.from_env({live_tls.INTERFACES_VARIABLE: str(big)}).discover()


def test_a_set_interfaces_variable_is_said_once_and_a_bad_file_is_a_clear_error(tmp_path):
    path = tmp_path / "interfaces.json"
    path.write_text(json.dumps({"interfaces": {"wlan0": ["192.168.5.5"]}, "default": "wlan0"}))
    out = io.StringIO()
    env = {live_tls.INTERFACES_VARIABLE: str(path)}
    plan = LocalSession(ServeConfig(), Globals(), UI(out=out, err=out), env)._plan()
    assert plan.primary == "192.168.5.5"
    assert out.getvalue() == (f"warning: {live_tls.INTERFACES_VARIABLE} is set: the network interfaces are read "
                              f"from {path}, not from this machine (unset it to follow this machine's networks)\n")
    env[live_tls.INTERFACES_VARIABLE] = str(tmp_path)
    with pytest.raises(DevhttpsError, match=r"could not read the network interfaces: .* is not a regular file"):
        LocalSession(ServeConfig(), Globals(), UI(out=out, err=out), env)._plan()


def test_a_pair_replaced_while_devhttps_starts_is_served(tmp_path):
    ca = trustme.CA()
    first = ca.issue_cert("localhost")
    pair = Pair(tmp_path / "certs", first)
    tls = certs.prepare(ServeConfig(cert=pair.cert, key=pair.key), Globals(), UI(), {}, plan_for(([], None)))
    newer = ca.issue_cert("localhost")
    pair.put(newer)  # after the pair was loaded, before its watch begins
    harness = Harness(pair)
    harness.start_proxy()
    out = io.StringIO()
    try:
        harness.proxy.set_ssl_context(tls.context)
        log = CertLog(UI(json_mode=True, out=out))
        harness.call(lambda: harness.loop.create_task(live_tls.follow_pair(
            harness.proxy, pair.cert, pair.key, log, lambda ctx: [], loaded=tls.pair_fingerprint)))
        assert harness.wait_for(lambda: "cert_reloaded" in out.getvalue())
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        assert Conn(harness.port, ctx).sock.getpeercert(binary_form=True) == der(newer)
    finally:
        harness.close()
