"""Every byte the user sees: the console (colours on a TTY, plain when piped, ``--json`` lines), the
ready banner and the QR code. May import the services (for their plain values) and base; never app or cli.
"""
