# One image for web, worker and beat (docker-compose.yml chooses the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Everything but what .dockerignore leaves out (secrets, local state, caches, tests): a new app is in the
# image without touching this file.
COPY . .
RUN pip install --upgrade pip && pip install .

# collectstatic needs settings that load; the real keys come from the environment at run time.
RUN DJANGO_SECRET_KEY=collectstatic-only PII_HASH_KEY=collectstatic-only \
    FIELD_ENCRYPTION_KEYS=Y29sbGVjdHN0YXRpYy1vbmx5LW5vdC1hLXJlYWxrZXk= \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 portal && mkdir -p /app/.local && chown portal /app/.local
USER portal

EXPOSE 8000
CMD ["gunicorn", "-c", "python:ckycportal.gunicorn_conf", "ckycportal.wsgi:application"]
