# vsession in a container: `docker build -t vsession .` then
#   docker run -p 8443:8443 -v vsession-data:/data vsession
# The data volume holds the SQLite file, the key folder and the self-signed certificate;
# back it up, and keep the audit checkpoints (`vsession audit checkpoint`) somewhere else.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package only, without the test extras; the sources do not stay in the image.
COPY . /tmp/vsession-src
RUN pip install /tmp/vsession-src && rm -rf /tmp/vsession-src

RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin vsession \
    && mkdir -p /data \
    && chown vsession:vsession /data \
    && chmod 0700 /data

USER vsession
WORKDIR /data
ENV VSESSION_DATA_DIR=/data
VOLUME /data
EXPOSE 8443

# No curl in the slim image. The probe talks to its own loopback, so it skips certificate
# checks: a practice's own certificate names its public host, not 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE; urllib.request.urlopen('https://127.0.0.1:' + os.environ.get('VSESSION_PORT', '8443') + '/healthz', timeout=4, context=c)"]

# Reachable from outside the container, so TLS is required; give --tls-cert/--tls-key
# (mounted read-only) instead of --self-signed for a real certificate.
CMD ["vsession", "serve", "--host", "0.0.0.0", "--self-signed"]
