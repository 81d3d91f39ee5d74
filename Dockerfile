# canaryctl controller image.
#
# Two stages: the builder installs canaryctl and its dependencies, as declared in the
# package metadata (setup.cfg), into /install; the final image copies only that tree onto
# a clean slim Python, so no build tools or sources end up in it. It runs as a fixed
# numeric non-root user (the manifests' runAsUser) and needs no writable root filesystem.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY setup.cfg setup.py README.md ./
COPY canaryctl ./canaryctl
RUN pip install --prefix=/install --no-warn-script-location .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /install /usr/local
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["canaryctl"]
CMD ["run"]
