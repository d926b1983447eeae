# syntax=docker/dockerfile:1
# A slim, non-root image that runs one bundled flow. Secrets come from the
# environment at run time (SEGMENT_WRITE_KEY); none is written into a layer.
#   docker build --build-arg FLOW_FILE=flows/examples/shop.flow.json -t flows .
#   docker run -p 8080:8080 -e SEGMENT_WRITE_KEY=... flows
# FLOW_FILE is a path in the build context. The examples are named where they really are
# (flows/examples/, shipped in the package): a COPY through the examples/ symlink at the
# root is not relied on.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG FLOW_FILE=flows/examples/shop.flow.json
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/flows
# The dependency layer needs only these two files, so a code change does not reinstall it:
# the list is read from pyproject.toml (markers included) and every version is pinned by
# constraints.txt (`make constraints`).
COPY pyproject.toml constraints.txt ./
RUN /opt/flows/bin/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
 && /opt/flows/bin/pip install -r requirements.txt -c constraints.txt
COPY README.md LICENSE ./
COPY collector ./collector
COPY destination_segment ./destination_segment
COPY flows ./flows
# The project alone; `pip check` fails the build if constraints.txt is stale and a
# dependency added to pyproject.toml is missing or at a version it does not allow.
RUN /opt/flows/bin/pip install --no-deps . && /opt/flows/bin/pip check
COPY ${FLOW_FILE} /src/flow.json
# An invalid flow fails the build here; $env references stay references.
RUN /opt/flows/bin/flows bundle /src/flow.json -o /opt/flow.bundle.json

FROM ${PYTHON_IMAGE}
# tini is PID 1: it forwards SIGTERM to `flows run` and reaps what `--workers` forks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home flows \
 && mkdir -p /var/lib/flows/dead-letter && chown -R flows /var/lib/flows
COPY --from=build /opt/flows /opt/flows
COPY --from=build /opt/flow.bundle.json /app/flow.bundle.json
ENV PATH=/opt/flows/bin:$PATH PORT=8080 PYTHONUNBUFFERED=1 \
    FLOWS_DEAD_LETTER_DIR=/var/lib/flows
# Undeliverable messages are written here; mount a volume to keep them for `flows replay`.
VOLUME ["/var/lib/flows/dead-letter"]
WORKDIR /var/lib/flows
USER flows
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('PORT', '8080'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "flows", "run", "/app/flow.bundle.json"]
