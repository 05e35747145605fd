# The training image: SageMaker's training contract (`train`) and the pipeline's Evaluate and
# Register steps.
#
#   docker build -f docker/training.Dockerfile --build-arg GIT_SHA="$(git rev-parse HEAD)" \
#       -t "$REPOSITORY:$TAG-training" .
#
# Tag it as the serving image of the same commit with `-training` appended (components/training.py
# names that tag by default): the package the Train step lays out carries this image's serving
# code, and the serving image refuses a package whose serving code differs from its own.
#
# Train:    `docker run IMAGE train` (docker/train, pipelines.training.container).
# Evaluate: `python3 -m pipelines.training.evaluate_step` (the Processing job's ContainerEntrypoint).
# Register: `python3 -m pipelines.training.register_step` (the platform's registry, through boto3).
#
# Same base and the same serving lock as docker/serving.Dockerfile, so a model is fitted with the
# library versions that serve it (the package's requirements.lock is read from this environment).
# Training also reads the service contracts (pydantic, ruamel.yaml) and Register writes the
# registry (boto3): those are pinned below at the versions of uv.lock. A team's training code
# may import only what is installed here.
#
# The image runs as root: SageMaker mounts /opt/ml/model, /opt/ml/output and the processing
# volumes owned by root, and a job whose user cannot write them fails.
FROM python:3.11-slim

ARG GIT_SHA=unknown

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/modelrail \
    MODELRAIL_PROJECT_DIR=/opt/modelrail \
    MODELRAIL_GIT_SHA=${GIT_SHA}

COPY docker/requirements.lock /opt/modelrail/requirements.lock
RUN pip install --no-cache-dir --no-deps -r /opt/modelrail/requirements.lock \
    && pip install --no-cache-dir --no-deps \
        annotated-types==0.8.0 \
        boto3==1.44.8 \
        botocore==1.44.8 \
        jmespath==1.1.0 \
        pydantic==2.14.4 \
        pydantic-core==2.50.5 \
        ruamel.yaml==0.19.1 \
        s3transfer==0.19.3 \
        typing-extensions==4.16.0 \
        typing-inspection==0.4.5 \
        urllib3==2.8.0

COPY pipelines /opt/modelrail/pipelines
COPY infra/__init__.py infra/config.py infra/naming.py infra/yamlio.py /opt/modelrail/infra/
COPY services /opt/modelrail/services
COPY docker/train /usr/local/bin/train
RUN chmod 755 /usr/local/bin/train

WORKDIR /opt/modelrail
CMD ["train"]
