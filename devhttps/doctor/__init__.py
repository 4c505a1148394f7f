"""`devhttps doctor`: a checklist of what devhttps needs, as data.

Each check is one small function decorated with :func:`devhttps.doctor.check.check`, listed in
:mod:`devhttps.doctor.runner`; it reads a :class:`devhttps.doctor.context.Context` and returns OK, WARN or
FAIL with a detail and a fix. Nothing here prints: the command shows the results through ``devhttps.ui``.
Uses the services (ca, net, upstream) and base; never the app or the command line.
"""
