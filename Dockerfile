# slatesim: gunicorn serving the app, configured by environment variables (README.md).
#
# Built and run by `make test-container` (tests/container/): the same file, unchanged.
#
# The base is Debian bookworm with Debian's own Python 3.11 in a virtualenv, not the official
# python:3.11-slim (README.md, *Container image*, says why and what differs): the image the
# tests build is then made from the same packages as the one users build.
#
# Building behind a proxy that re-signs TLS, or from a private index: pass the build
# arguments below (`--build-arg PIP_INDEX_URL=...`; a CA bundle can be mounted for PIP_CERT);
# they are used by the build stage only and never reach the final image.
FROM debian:bookworm-slim AS build
ARG PIP_INDEX_URL
ARG PIP_CERT
# A C compiler and Python's headers: the simulation's kernel is C (app/slates/_kernel.c).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/slatesim
ENV PATH=/opt/slatesim/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# The pinned set first, in its own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt /src/
RUN pip install -r /src/requirements.txt
COPY . /src
RUN pip install --no-deps /src

FROM debian:bookworm-slim
# Debian's Python alone (no compiler, no headers, no pip cache): the virtualenv's python is a
# link to it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
# root owns the code: the process below cannot change it.
COPY --from=build /opt/slatesim /opt/slatesim
WORKDIR /app
COPY gunicorn.conf.py ./

# No bytecode files written at run time; log lines reach the container runtime unbuffered.
ENV PATH=/opt/slatesim/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# A user without a home or shell: the process owns nothing it could overwrite.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin slatesim
USER slatesim

# Listen on every interface inside the container; logs go to stdout only (no file to rotate).
ENV BIND=0.0.0.0:8000 \
    LOG_FILE=""
EXPOSE 8000

# gunicorn drains on SIGTERM; give it SHUTDOWN_TIMEOUT_SECONDS + 15 s (`docker stop -t 105`).
STOPSIGNAL SIGTERM

# Liveness only (/health never touches Redis or Neo4j); the image has no curl. The port is
# BIND's, so a container started with another BIND is still checked where it listens.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "app.healthcheck"]

# Exec form: gunicorn is PID 1 and receives SIGTERM itself.
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
