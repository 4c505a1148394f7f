"""This machine's trust stores: adding the local CA to them and taking it out again (`devhttps ca install`).

One module per store with the same two functions, ``install(ca, host)`` and ``uninstall(ca, host)``, like
mkcert's ``truststore_*.go``: ``system_linux`` (update-ca-certificates, update-ca-trust, trust), ``nss``
(Chrome/Chromium's and Firefox's databases through ``certutil``), ``darwin`` (the System keychain) and
``windows`` (the ROOT store). ``stores`` picks the ones for a platform.

The CA arrives as plain values (:class:`~devhttps.trust.cacert.TrustCA`); every path, the command runner and
the privilege check come from a :class:`~devhttps.trust.host.Host`, so tests point them at temporary folders
and fake commands. Nothing here prints: commands that change something are announced through the host before
they run, and each store returns what it did as :class:`~devhttps.trust.host.Outcome` values.
"""
