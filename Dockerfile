# cart-recovery image: `docker build -t ghcr.io/cart-recovery/cart-recovery:0.1.0 .`
# Build stage: a virtualenv with the service and its runtime dependencies only (no dev extras).
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE ./
COPY recovery ./recovery
# The wheel build ships config/ and templates/ inside the package as its defaults.
COPY config ./config
COPY templates ./templates
RUN /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install '.[report]'

# Final stage: the same slim base, no compiler, the virtualenv, default config and templates, non-root.
FROM python:3.11.11-slim-bookworm
LABEL org.opencontainers.image.title="cart-recovery" \
      org.opencontainers.image.ref.name="ghcr.io/cart-recovery/cart-recovery" \
      org.opencontainers.image.source="https://github.com/cart-recovery/cart-recovery" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RECOVERY_CONFIG=/app/config/recovery.yaml
RUN groupadd --system --gid 10001 recovery \
    && useradd --system --uid 10001 --gid recovery --home-dir /app --shell /usr/sbin/nologin recovery
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY config ./config
COPY templates ./templates
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["recovery"]
CMD ["run"]
