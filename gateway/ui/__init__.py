"""The Control UI: static files served by the gateway."""
