"""Android's adb: finding the executable, running it with a deadline, reading `adb devices -l`, and the
commands an adb session needs (`reverse` add/list/remove, `shell am start`). A service: imports only base.

It knows nothing of devhttps's other parts: the app passes it paths, serials and ports, and gets back plain
values or a DevhttpsError whose message and hint speak adb.
"""
