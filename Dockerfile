# slatesim: gunicorn serving the app, configured by environment variables (README.md).
# Not built in CI, which has no Docker engine: every command below is one the test suite runs
# itself (`make install` installs the pinned requirements, then the package without
# dependencies; the end-to-end tests start `gunicorn -c gunicorn.conf.py`).
# The simulation's kernel is C (app/slates/_kernel.c): built into a wheel where a compiler is,
# so the image that runs has none.
FROM python:3.11 AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

# No bytecode files in the image; log lines reach the container runtime unbuffered.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The pinned set first, in its own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY gunicorn.conf.py ./
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels

# A user without a home or shell: the process owns nothing it could overwrite.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin slatesim
USER slatesim

# Listen on every interface inside the container; logs go to stdout only (no file to rotate).
ENV BIND=0.0.0.0:8000 \
    LOG_FILE=""
EXPOSE 8000

# gunicorn drains on SIGTERM; give it SHUTDOWN_TIMEOUT_SECONDS + 15 s (`docker stop -t 105`).
STOPSIGNAL SIGTERM

# Liveness only (/health never touches Redis or Neo4j); the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]

# Exec form: gunicorn is PID 1 and receives SIGTERM itself.
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
