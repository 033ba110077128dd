"""Compatibility suite: the reference OpenClaw CLI and wire schema against our gateway."""
