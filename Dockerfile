# One image for web, worker and beat: the services differ only in their command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# Every package pinned with its hashes (make lock), so the image gets exactly what was tested.
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock

COPY . .

# Static files are collected at build time and served by WhiteNoise. collectstatic needs
# settings to import, so it gets a throwaway key; the real one comes from the environment.
RUN DJANGO_SECRET_KEY=build-only-key DJANGO_DEBUG=0 python manage.py collectstatic --noinput

RUN useradd --create-home --uid 1000 thumbnailer \
    && mkdir -p /app/media /app/data \
    && chown -R thumbnailer /app/media /app/data
USER thumbnailer

EXPOSE 8000
CMD ["gunicorn", "thumbnailer_project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "16", "--access-logfile", "-"]
