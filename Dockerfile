# One image for web, worker and beat (docker-compose.yml chooses the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml ./
COPY ckycportal ckycportal
COPY institutions institutions
COPY records records
COPY uploads uploads
COPY kwikid_standin kwikid_standin
RUN pip install --upgrade pip && pip install .
COPY manage.py ./
COPY templates templates
COPY static static

# collectstatic needs settings that load; the real key comes from the environment at run time.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 portal && mkdir -p /app/.local && chown portal /app/.local
USER portal

EXPOSE 8000
CMD ["gunicorn", "ckycportal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--access-logfile", "-"]
