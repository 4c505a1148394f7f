"""The command line: argv → a config → one command of :mod:`devhttps.app`.

Owns the parser (one module per command) and is the only place that turns errors into exit codes.
May import everything below it: app, ui, the services, base.
"""

from devhttps.cli.main import main

__all__ = ["main"]
