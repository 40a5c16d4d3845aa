# cart-recovery image: `docker build -t ghcr.io/cart-recovery/cart-recovery:0.1.0 .`
# The base is pinned by digest (a tag can be re-pushed, a digest cannot) in both FROM lines. The digest was
# read from public pins of this tag, not from the registry on this machine: check it, and update it
# when Python or Debian publish fixes, with
#   docker buildx imagetools inspect python:3.11.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# (or `crane digest python:3.11.11-slim-bookworm`), then replace the digest in both FROM lines.
# Build stage: a virtualenv with the service and its runtime dependencies only (no dev extras).
FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies come from the hashed locks (pip-compile --generate-hashes; `make lock` regenerates them): the
# image installs exactly what was audited (`make audit`), and pip/setuptools are upgraded from pins too.
COPY requirements-base.lock requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements-base.lock \
    && /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE ./
COPY recovery ./recovery
# The wheel build ships config/ and templates/ inside the package as its defaults.
COPY config ./config
COPY templates ./templates
# The service itself only: its dependencies are already installed from the lock.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation .

# Final stage: the same slim base, no compiler, the virtualenv, default config and templates, non-root.
FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5
LABEL org.opencontainers.image.title="cart-recovery" \
      org.opencontainers.image.ref.name="ghcr.io/cart-recovery/cart-recovery" \
      org.opencontainers.image.source="https://github.com/cart-recovery/cart-recovery" \
      org.opencontainers.image.licenses="Apache-2.0"
# HTTP on every interface, or a published port reaches nothing (the package's default, 127.0.0.1, is for a
# laptop); the chart sets it too.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RECOVERY_CONFIG=/app/config/recovery.yaml \
    RECOVERY_HTTP__HOST=0.0.0.0
# The base image's own pip and setuptools (outside the venv) are upgraded too, from the same hashed pins.
COPY requirements-base.lock /tmp/requirements-base.lock
RUN python -m pip install --no-cache-dir --require-hashes -r /tmp/requirements-base.lock \
    && rm /tmp/requirements-base.lock
RUN groupadd --system --gid 10001 recovery \
    && useradd --system --uid 10001 --gid recovery --home-dir /app --shell /usr/sbin/nologin recovery
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY config ./config
COPY templates ./templates
# The one writable directory of a bare `docker run` (WORKDIR stays root's, read-only to the service): the
# default SQLite file (database.url var/recovery.db, relative to WORKDIR) and the dry-run outbox (var/outbox).
# Mount a volume here to keep them: `docker run -v recovery-data:/app/var ...`.
RUN install -d -o 10001 -g 10001 -m 0750 /app/var
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["recovery"]
CMD ["run"]
