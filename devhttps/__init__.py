"""devhttps: trusted HTTPS in front of a local web app, so phones get the microphone."""

__version__ = "0.1.0"
