# vsession in a container. Build: `docker build -t vsession .` (or `buildah bud`); BASE names
# another Debian bookworm image, e.g. a mirror's copy: `--build-arg BASE=registry.example/debian:bookworm-slim`.
# Run alone for a trial (self-signed certificate, media straight to the host's addresses):
#   docker run --network host -v vsession-data:/data vsession
# For a practice use compose.yaml: Caddy in front, coturn beside it.
# The /data volume holds the SQLite file, the key folder and the self-signed certificate; back it
# up (`vsession backup`), and keep the audit checkpoints (`vsession audit checkpoint`) elsewhere.
ARG BASE=debian:bookworm-slim

# Stage 1 builds the virtual environment; its pip, the sources and the CA bundle stay behind.
FROM ${BASE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/vsession
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies first, from pyproject.toml alone, so an edit of the sources reuses this layer.
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; print(*tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
    && /opt/vsession/bin/pip install -r /tmp/requirements.txt
# The package only, without the test extras; then nothing is left to install packages with.
COPY README.md /src/
COPY vsession /src/vsession
COPY web /src/web
RUN /opt/vsession/bin/pip install /src \
    && /opt/vsession/bin/pip uninstall --yes pip setuptools

FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin vsession \
    && install -d -o vsession -g vsession -m 0700 /data
COPY --from=build /opt/vsession /opt/vsession

ENV PATH=/opt/vsession/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VSESSION_DATA_DIR=/data \
    VSESSION_MEDIA_PORTS=50000-50199
USER vsession
WORKDIR /data
VOLUME /data
# The media range is VSESSION_MEDIA_PORTS above; compose.yaml and the firewall open the same one.
EXPOSE 8443/tcp 50000-50199/udp

# No curl in the image. The probe talks to its own loopback, so it skips certificate checks: a
# practice's certificate names its public host, not 127.0.0.1. compose.yaml probes plain http.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, ssl, urllib.request; c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE; urllib.request.urlopen('https://127.0.0.1:' + os.environ.get('VSESSION_PORT', '8443') + '/healthz', timeout=4, context=c)"]

# TLS: bound to every address, the server must speak TLS (plain http is allowed on loopback only),
# so alone the image makes and reuses a self-signed certificate in /data (or mount a real one and
# give --tls-cert/--tls-key instead of --self-signed). compose.yaml instead runs it on the host's
# network bound to 127.0.0.1 over plain http, behind Caddy, which holds the public certificate:
# one certificate to renew, and no second TLS hop on the same machine.
CMD ["vsession", "serve", "--host", "0.0.0.0", "--self-signed"]
