# One image for web, worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=callcenter.settings PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt
COPY . .
RUN useradd --create-home callcenter && mkdir -p /tmp/prometheus && chown callcenter /tmp/prometheus
USER callcenter

EXPOSE 8000
CMD ["gunicorn", "-c", "python:callcenter.gunicorn_conf", "callcenter.wsgi:application", "--bind", "0.0.0.0:8000"]
