"""The OpenClaw gateway wire protocol v4: frame shapes, errors, scopes."""
