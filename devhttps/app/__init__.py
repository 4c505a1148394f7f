"""One run of devhttps: upstream → certificate → proxy → preflight → banner → wait → shutdown.

The only place that combines services: it passes them plain values and tells :mod:`devhttps.ui` what
happened. Also the commands built on that (``ca``). May import ui, the services and base; never cli.
"""
