FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOOTCAPITAL_HOST=0.0.0.0 \
    LOOTCAPITAL_DATA_DIR=/data

RUN useradd --create-home --uid 10001 lootcapital \
    && mkdir /data && chown lootcapital /data

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY domain domain
COPY adapters adapters
COPY service_layer service_layer
COPY api api
COPY web web
COPY lootcapital lootcapital
COPY alembic alembic
COPY data/sample data/sample
RUN pip install --no-cache-dir -e .

USER lootcapital
VOLUME /data
EXPOSE 8000
CMD ["lootcapital", "serve"]
