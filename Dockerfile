# One image for web, worker and beat.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=callcenter.settings PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt
COPY . .
# Static files are part of the image: WhiteNoise serves them from gunicorn (hashed, compressed).
# collectstatic reads no database and no secret; DEBUG=true only lets settings load at build time.
RUN DEBUG=true python manage.py collectstatic --noinput --verbosity 0
RUN useradd --create-home callcenter && mkdir -p /tmp/prometheus && chown callcenter /tmp/prometheus
USER callcenter

EXPOSE 8000
CMD ["gunicorn", "-c", "python:callcenter.gunicorn_conf", "callcenter.wsgi:application", "--bind", "0.0.0.0:8000"]
