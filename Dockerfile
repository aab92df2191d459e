# anse-hw in a container: Debian bookworm's Python 3.11, as on Raspberry Pi OS.
#
#   docker build -t anse-hw .
#   docker run --rm -p 8001:8001 anse-hw --sim              # a laptop, no hardware
#   docker compose -f deploy/compose.yaml up -d              # a Pi: see that file
#
# BASE may be any Debian bookworm image with python3 and its venv module; the
# tests use one assembled locally with mmdebstrap (no registry needed).  For a
# build that is the same tomorrow, pin it by digest:
#   docker build --build-arg BASE=python:3.11-slim-bookworm@sha256:<digest> .
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` shows it).
ARG BASE=python:3.11-slim-bookworm

# -- build: pip, setuptools and the wheel build stay in this stage ----------------
FROM ${BASE} AS build

# Behind a mirror or a TLS-inspecting proxy: --build-arg PIP_INDEX_URL=… and
# PIP_CERT=/path/in/a/build/volume (pip reads both from the environment).
ARG PIP_INDEX_URL
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# /opt/build holds the tools; /opt/anse-hw, the venv that ships, gets no pip.
RUN python3 -m venv /opt/build && python3 -m venv --without-pip /opt/anse-hw

# The dependencies alone, read from pyproject.toml (nothing to keep in step
# by hand), before any code is copied: an edit to anse_hw/ reuses this layer
# instead of reinstalling every dependency.  The `pi` extra brings lgpio on
# arm64, the pin factory that works on a Pi 5.  The .pth puts /opt/anse-hw-app
# (the code, its own layer below) on the venv's path.
COPY pyproject.toml /src/
RUN /opt/build/bin/python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb')); \
        open('/src/build.txt', 'w').write('\n'.join(p['build-system']['requires'])); \
        d = p['project']; open('/src/deps.txt', 'w').write('\n'.join(d['dependencies'] + d['optional-dependencies']['pi']))" \
    && /opt/build/bin/pip install -r /src/build.txt \
    && /opt/build/bin/pip --python /opt/anse-hw/bin/python install -r /src/deps.txt \
    && echo /opt/anse-hw-app > "$(/opt/anse-hw/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/anse-hw-app.pth"

# The code: a wheel built here, installed beside the venv (its script runs
# the venv's python).
COPY README.md LICENSE /src/
COPY anse_hw /src/anse_hw
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels /src \
    && /opt/build/bin/pip --python /opt/anse-hw/bin/python install --no-deps \
        --target /opt/anse-hw-app /wheels/*.whl

# -- runtime: the venv, then the code, each its own layer -------------------------
FROM ${BASE}

# Never root.  Give it the host's gpio and dialout groups with --group-add
# (compose: group_add) and the devices with --device.
RUN useradd --system --uid 999 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin anse-hw \
    && mkdir -p /etc/anse-hw /var/lib/anse-hw /run/anse-hw \
    && chown anse-hw:anse-hw /var/lib/anse-hw /run/anse-hw

COPY --from=build /opt/anse-hw /opt/anse-hw
COPY --from=build /opt/anse-hw-app /opt/anse-hw-app

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
    CMD ["/opt/anse-hw-app/bin/anse-hw", "health"]

# The daemon is PID 1 and handles SIGTERM itself: motors to their safe state,
# then exit 0.  `docker stop` gives it 10 s by default; it needs well under 1.
ENTRYPOINT ["/opt/anse-hw-app/bin/anse-hw"]
