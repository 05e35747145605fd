# The serving image: the SageMaker inference container contract on port 8080.
#
#   docker build -f docker/serving.Dockerfile -t modelrail-serving:latest .
#   docker run -p 8080:8080 -v "$PWD/model:/opt/ml/model:ro" modelrail-serving:latest serve
#
# requirements.lock pins the serving environment the packages record (refresh it with
# `python -m pipelines.packaging.environment > docker/requirements.lock`). The container
# verifies every file of /opt/ml/model against manifest.json, and the packaged serving code
# against the image's own copy, before it runs the package's code (docker/serve). So the image
# serves only packages built by the same serving code: rebuild a package for a newer image. A
# service whose contract names its own `predict` ships that module in the package (code/service/,
# pinned by manifest.json), so the image needs nothing per service.
#
# MODELRAIL_SERVING_THREADS: OpenMP/BLAS threads per request (the server sets OMP_NUM_THREADS,
# OPENBLAS_NUM_THREADS and MKL_NUM_THREADS from it before numpy loads). Default 1: concurrency
# comes from the request threads; more library threads per request oversubscribe the cores.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/modelrail \
    MODELRAIL_SERVING_THREADS=1

COPY docker/requirements.lock /opt/modelrail/requirements.lock
RUN pip install --no-cache-dir --no-deps -r /opt/modelrail/requirements.lock

COPY pipelines/__init__.py pipelines/errors.py /opt/modelrail/pipelines/
COPY pipelines/serving/*.py /opt/modelrail/pipelines/serving/
COPY docker/serve /usr/local/bin/serve

RUN useradd --system --no-create-home modelrail
USER modelrail
EXPOSE 8080
CMD ["serve"]
