"""Reading `adb devices -l` and `adb reverse --list`, and choosing the device: every refusal says what to do."""

from __future__ import annotations

import pytest

from devhttps.adb.devices import Device, choose, listing, parse_devices, parse_reverse_list
from devhttps.base.errors import DevhttpsError, UsageError

# As adb 1.0.41 prints them (serial padded to 22 columns; model and product only once authorized).
NO_PERMISSIONS = ("????????????           no permissions (user in plugdev group; are your udev rules wrong?); "
                  "see [http://developer.android.com/tools/device.html] usb:1-4 transport_id:5")
REAL = f"""\
* daemon not running; starting now at tcp:5037
* daemon started successfully
List of devices attached
R58M12345AB            device usb:1-1 product:panther model:Pixel_7 device:panther transport_id:1
emulator-5554          device product:sdk_gphone64_x86_64 model:sdk_gphone64_x86_64 device:emu64xa transport_id:2
0123456789ABCDEF       unauthorized usb:1-2 transport_id:3
R3CN90ABCDE            offline usb:1-3 transport_id:4
{NO_PERMISSIONS}
192.168.1.33:5555      device product:oriole model:Pixel_6 device:oriole transport_id:6

"""


def test_every_state_and_model_is_read():
    found = parse_devices(REAL)
    assert [(d.serial, d.state, d.model) for d in found] == [
        ("R58M12345AB", "device", "Pixel_7"),
        ("emulator-5554", "device", "sdk_gphone64_x86_64"),
        ("0123456789ABCDEF", "unauthorized", None),
        ("R3CN90ABCDE", "offline", None),
        ("????????????", "no permissions", None),
        ("192.168.1.33:5555", "device", "Pixel_6"),  # wireless debugging
    ]
    assert "plugdev" in found[4].detail
    assert found[0].label == "Pixel 7 (R58M12345AB)" and found[2].label == "0123456789ABCDEF"


def test_short_listing_and_nothing_attached():
    assert parse_devices("List of devices attached\nR58M12345AB\tdevice\n\n") == [Device("R58M12345AB", "device")]
    assert parse_devices("List of devices attached\n\n") == []


def test_reverse_list_is_read_from_the_end_of_each_line():
    text = "UsbFfs tcp:8080 tcp:8080\nhost-19 tcp:8081 tcp:9000\n\n"
    assert parse_reverse_list(text) == {"tcp:8080": "tcp:8080", "tcp:8081": "tcp:9000"}
    assert parse_reverse_list("") == {}


DEVICES = parse_devices(REAL)


def test_the_only_device_is_chosen_and_a_serial_picks_one_of_several():
    assert choose(DEVICES[:1], None).serial == "R58M12345AB"
    assert choose(DEVICES, "emulator-5554").serial == "emulator-5554"


def test_several_without_a_serial_is_a_usage_error_listing_them_with_models():
    with pytest.raises(UsageError) as caught:
        choose(DEVICES, None)
    message = caught.value.message
    assert "6 are connected" in message
    assert "R58M12345AB (Pixel 7)" in message and "emulator-5554 (sdk gphone64 x86 64)" in message
    assert "0123456789ABCDEF (unauthorized)" in message
    assert caught.value.hint == "pick one with --device SERIAL, e.g. --device R58M12345AB"


@pytest.mark.parametrize("devices,wanted,says,hint", [
    ([], None, "could not find an Android device", "USB debugging"),
    ([], "R58M12345AB", "adb lists no device", "USB debugging"),
    (DEVICES[:2], "nope", "adb lists R58M12345AB (Pixel 7), emulator-5554", "--device SERIAL"),
    (DEVICES[2:3], None, "has not accepted this computer yet (unauthorized)", "Allow"),
    (DEVICES, "R3CN90ABCDE", "adb sees it offline", "plug it back in"),
    (DEVICES, "????????????", "no permission", "plugdev"),
    ([Device("X1", "recovery")], None, "state 'recovery'", "start the phone normally"),
])
def test_each_refusal_says_why_and_what_next(devices, wanted, says, hint):
    with pytest.raises(DevhttpsError) as caught:
        choose(devices, wanted)
    assert says in caught.value.message and hint in caught.value.hint
    assert caught.value.message.startswith("could not ")


def test_the_source_of_the_serial_is_named():
    with pytest.raises(DevhttpsError, match=r"\(ANDROID_SERIAL\)"):
        choose(DEVICES[:1], "gone", "ANDROID_SERIAL")


def test_listing():
    assert listing(DEVICES[:3]) == ("R58M12345AB (Pixel 7), emulator-5554 (sdk gphone64 x86 64), "
                                    "0123456789ABCDEF (unauthorized)")
