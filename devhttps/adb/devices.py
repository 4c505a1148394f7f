"""`adb devices -l` and `adb reverse --list` read into plain values; which device to use, and what to do
when none fits.

A line of `adb devices -l` is ``SERIAL  STATE [usb:1-1] [product:P] [model:M] [device:D] [transport_id:N]``
(adb pads the serial to 22 columns). STATE is one word (``device``, ``unauthorized``, ``offline``,
``bootloader``, ...) except ``no permissions (...)`` on Linux without udev rules, which has spaces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from devhttps.base.errors import DevhttpsError, UsageError

READY = "device"  # the state in which adb commands reach the phone
_FIELD = re.compile(r"^(usb|product|model|device|transport_id):(\S*)$")

USB_DEBUGGING_HINT = (
    "connect the phone by USB and turn on USB debugging (Settings → About phone → tap Build number 7 times; "
    "then Settings → System → Developer options → USB debugging), accept the prompt on the phone, and check "
    "that `adb devices` lists it")
UNAUTHORIZED_HINT = (
    "unlock the phone and tap Allow on the \"Allow USB debugging?\" prompt, then run again; no prompt? unplug "
    "and plug it back in, or tap Revoke USB debugging authorisations in Developer options and reconnect")
OFFLINE_HINT = ("unplug the phone and plug it back in (or run `adb reconnect offline`), then run again; if it "
                "stays offline, `adb kill-server` restarts adb")
NO_PERMISSIONS_HINT = (
    "this user may not open the USB device: install the udev rules (Debian/Ubuntu: `sudo apt install "
    "android-sdk-platform-tools-common`), join the plugdev group (`sudo usermod -aG plugdev $USER`, then log in "
    "again) and plug the phone back in")
_STATE_HINTS = {
    "unauthorized": ("it has not accepted this computer yet (unauthorized)", UNAUTHORIZED_HINT),
    "offline": ("adb sees it offline", OFFLINE_HINT),
    "no permissions": ("adb has no permission to open it (no permissions)", NO_PERMISSIONS_HINT),
    "authorizing": ("adb is still authorizing it", "wait a moment, then run again"),
    "connecting": ("adb is still connecting to it", "wait a moment, then run again"),
}


@dataclass(frozen=True)
class Device:
    serial: str
    state: str
    model: str | None = None  # as adb prints it: spaces and punctuation become _
    product: str | None = None
    detail: str = ""  # the words after a state, e.g. the advice in "no permissions (...)"

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def model_name(self) -> str | None:
        return self.model.replace("_", " ") if self.model else None

    @property
    def label(self) -> str:
        """``Pixel 7 (R58M12345AB)``, or the serial alone when adb knows no model (not yet authorized)."""
        return f"{self.model_name} ({self.serial})" if self.model_name else self.serial


def parse_devices(text: str) -> list[Device]:
    devices = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or line.startswith(("*", "List of devices", "adb ")):
            continue
        fields = {m.group(1): m.group(2) for m in map(_FIELD.match, words[2:]) if m}
        rest = [w for w in words[1:] if not _FIELD.match(w)]
        state = "no permissions" if rest[:2] == ["no", "permissions"] else rest[0]
        detail = " ".join(rest[2:] if state == "no permissions" else rest[1:])
        devices.append(Device(words[0], state, fields.get("model") or None, fields.get("product") or None, detail))
    return devices


def parse_reverse_list(text: str) -> dict[str, str]:
    """``{"tcp:8080": "tcp:8080"}``: the phone's side → this computer's. Each line is ``WHO LOCAL REMOTE``,
    where WHO differs between adb versions and transports (``UsbFfs``, ``host-19``, ...): read from the end."""
    mappings = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and ":" in words[-2] and ":" in words[-1]:
            mappings[words[-2]] = words[-1]
    return mappings


def listing(devices: Sequence[Device]) -> str:
    """``R58M12345AB (Pixel 7), 0123456789ABCDEF (unauthorized)``."""
    def one(d: Device) -> str:
        about = [x for x in (d.model_name, None if d.ready else d.state) if x]
        return f"{d.serial} ({', '.join(about)})" if about else d.serial

    return ", ".join(one(d) for d in devices)


def choose(devices: Sequence[Device], wanted: str | None, source: str = "--device") -> Device:
    """The device to use: ``wanted`` (a serial), else the only one. Raises with the next step when none fits."""
    if wanted is not None:
        found = [d for d in devices if d.serial == wanted]
        if not found:
            listed = f"adb lists {listing(devices)}" if devices else "adb lists no device"
            hint = "use one of those serials with --device SERIAL" if devices else USB_DEBUGGING_HINT
            raise DevhttpsError(f"could not find the device {wanted} ({source}): {listed}", hint)
        device = found[0]
    elif not devices:
        raise DevhttpsError("could not find an Android device: `adb devices` lists none", USB_DEBUGGING_HINT)
    elif len(devices) > 1:
        example = next((d for d in devices if d.ready), devices[0]).serial
        raise UsageError(f"could not choose a device: {len(devices)} are connected: {listing(devices)}",
                         f"pick one with --device SERIAL, e.g. --device {example}")
    else:
        device = devices[0]
    problem = state_problem(device)
    if problem is not None:
        raise problem
    return device


def state_problem(device: Device) -> DevhttpsError | None:
    """Why adb cannot use this device now, with what to do about it; None when it is ready."""
    if device.ready:
        return None
    why, hint = _STATE_HINTS.get(device.state, (
        f"it is in state {device.state!r}, not ready for adb",
        "start the phone normally (not in the bootloader, recovery or sideload mode), then run again"))
    return DevhttpsError(f"could not use the device {device.label}: {why}", hint)
