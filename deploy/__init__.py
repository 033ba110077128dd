"""Programs the container image runs around the gateway (copied by the Dockerfile to
/usr/local/bin). Standard library only: they run before, or beside, the gateway's venv."""
