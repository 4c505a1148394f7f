"""What every layer may use: the error type, file and lock helpers, the upstream address value, and
:mod:`devhttps.base._compat` (every use of undocumented interpreter internals). Imports nothing of devhttps.
"""
