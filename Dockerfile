# anse-hw in a container: Debian bookworm's Python 3.11, as on Raspberry Pi OS.
#
#   docker build -t anse-hw .
#   docker run --rm -p 8001:8001 anse-hw --sim              # a laptop, no hardware
#   docker compose -f deploy/compose.yaml up -d              # a Pi: see that file
#
# BASE may be any Debian bookworm image with python3 and its venv module; the
# tests use one assembled locally with mmdebstrap (no registry needed).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

# Behind a mirror or a TLS-inspecting proxy: --build-arg PIP_INDEX_URL=… and
# PIP_CERT=/path/in/a/build/volume (pip reads both from the environment).
ARG PIP_INDEX_URL
ARG PIP_CERT

# A venv, so nothing is installed into the base image's own Python (PEP 668).
# The `pi` extra brings lgpio on arm64: the pin factory that works on a Pi 5.
RUN python3 -m venv /opt/anse-hw
COPY pyproject.toml README.md LICENSE /src/
COPY anse_hw /src/anse_hw
RUN /opt/anse-hw/bin/pip install --no-cache-dir --disable-pip-version-check "/src[pi]" \
    && rm -rf /src

# Never root.  Give it the host's gpio and dialout groups with --group-add
# (compose: group_add) and the devices with --device.
RUN useradd --system --uid 999 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin anse-hw \
    && mkdir -p /etc/anse-hw /var/lib/anse-hw /run/anse-hw \
    && chown anse-hw:anse-hw /var/lib/anse-hw /run/anse-hw

# The same places the systemd unit uses: config in /etc/anse-hw/config.yaml
# (mount it read-only), state (E-stop latch, control token, safe-stop record)
# in a volume, lgpio's notification pipes in /run/anse-hw.
ENV STATE_DIRECTORY=/var/lib/anse-hw \
    LG_WD=/run/anse-hw \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME /var/lib/anse-hw
WORKDIR /run/anse-hw
USER anse-hw
EXPOSE 8001

# 200 only while every watched sensor is fresh (a stale guard answers 503).
# It reads the port the daemon listens on from the config, like the daemon.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/anse-hw/bin/anse-hw", "health"]

# The daemon is PID 1 and handles SIGTERM itself: motors to their safe state,
# then exit 0.  `docker stop` gives it 10 s by default; it needs well under 1.
ENTRYPOINT ["/opt/anse-hw/bin/anse-hw"]
