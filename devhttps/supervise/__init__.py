"""Watching what a session serves: the upstream's process, its certificate files, the machine's addresses."""
