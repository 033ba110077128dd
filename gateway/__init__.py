"""clawgate: an OpenClaw-compatible AI assistant gateway."""

__version__ = "0.1.0"
# The wire protocol version we speak (OpenClaw gateway protocol v4).
PROTOCOL_VERSION = 4
