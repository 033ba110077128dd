# clawgate container image. Used by fly.toml / fly.private.toml (see docs/deploy-fly.md);
# works the same with plain `docker build` + `docker run`, with BuildKit or the classic builder
# (DOCKER_BUILDKIT=0): no heredocs, cache mounts or other BuildKit-only syntax.
#
# Nothing here is architecture-specific: the base image is multi-arch and every dependency is
# resolved by pip for the build platform, so the image builds on x86_64 and arm64 alike.
#
# tests/deploy/ parses this file: keep each instruction on its own line, ENV as KEY=value,
# CMD/ENTRYPOINT/HEALTHCHECK in exec (JSON) form.

# Same minor version as the dev venv and CI, so the test suite covers the interpreter we ship.
ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------------------
# builder: a virtualenv holding clawgate and its dependencies (ranges pinned in pyproject.toml).
# Only /opt/venv leaves this stage.
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder

ENV VIRTUAL_ENV=/opt/venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
ENV PIP_NO_INPUT=1

RUN python -m venv "$VIRTUAL_ENV"

# The build context is whitelisted by .dockerignore: pyproject.toml, README.md, LICENSE, the
# gateway/, channels/, providers/ packages and deploy/. Nothing else is sent to the builder.
WORKDIR /src
COPY . .

# A regular (non-editable) install: the package is copied into site-packages, .pyc files are
# precompiled, so the source tree is not needed at run time.
RUN "$VIRTUAL_ENV/bin/pip" install --no-cache-dir .

# ---------------------------------------------------------------------------------------------
# runtime: the same base image (the venv's interpreter symlink points at /usr/local/bin/python),
# the venv, two small stdlib-only programs from deploy/. No compilers, no pip cache, no source.
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

ENV VIRTUAL_ENV=/opt/venv
ENV PATH=/opt/venv/bin:$PATH
ENV PYTHONUNBUFFERED=1
ENV PYTHONDONTWRITEBYTECODE=1
# State (config, sessions, workspace, lock tree) lives on the Fly volume mounted at /data.
ENV OPENCLAW_STATE_DIR=/data
# The unprivileged account the gateway runs as (created below; read by clawgate-entrypoint).
ENV CLAWGATE_UID=10001
ENV CLAWGATE_GID=10001

RUN groupadd --gid 10001 clawgate && useradd --uid 10001 --gid 10001 --home-dir /home/clawgate --create-home --shell /usr/sbin/nologin clawgate && mkdir -p /data && chown 10001:10001 /data

COPY --from=builder /opt/venv /opt/venv

# Why an entrypoint, and why it starts as root (the gateway itself never runs as root):
# a Fly volume is mounted over /data at run time with a root-owned, 0755 root directory, which
# hides the chown done above, and fly.toml has no option to change the owner. Running the image
# as `USER clawgate` would therefore leave the gateway unable to create /data/tmp, /data/workspace
# and so on. deploy/entrypoint.py runs first (as root), makes the state dir belong to clawgate
# (only the entries that do not already; it never follows symlinks or crosses into another
# filesystem), drops to uid/gid 10001 with no supplementary groups, and then exec()s the command unchanged.
# exec keeps the PID and the argv exactly as given, so the CMD stays exec-form and SIGTERM from
# Fly (or `docker stop`) reaches the gateway directly. Fly's [processes] replaces only CMD, never
# ENTRYPOINT, so the same privilege drop happens there. Started as non-root (`docker run --user`,
# Kubernetes runAsNonRoot), it changes nothing and just execs.
COPY deploy/entrypoint.py /usr/local/bin/clawgate-entrypoint

# Docker HEALTHCHECK (Fly ignores it and uses [[http_service.checks]] instead). Slim images have
# no curl, so this is stdlib Python (deploy/healthcheck.py). It follows the port the running
# gateway actually bound: the gateway writes it into its lock payload (<state>/tmp/openclaw-<uid>/gateway.state.lock),
# so a `--port` override in fly.toml or `docker run ... --port N` needs no change here.
COPY deploy/healthcheck.py /usr/local/bin/clawgate-healthcheck
# COPY --chmod is BuildKit-only; the classic builder needs a RUN.
RUN chmod 0755 /usr/local/bin/clawgate-entrypoint /usr/local/bin/clawgate-healthcheck

# Starts as root only for clawgate-entrypoint (see above), which drops to uid 10001 before exec.
USER root
WORKDIR /home/clawgate
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["clawgate-healthcheck"]
ENTRYPOINT ["clawgate-entrypoint"]
CMD ["python", "-m", "gateway", "--allow-unconfigured", "--port", "3000", "--bind", "lan"]
