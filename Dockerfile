# CPU image of crpsgd_hvd: Python 3.11, torch and TensorFlow (CPU), Horovod 0.28.1 with Gloo,
# all set up by scripts/bootstrap.py, the same script that sets up a checkout.
#
# GPU clusters: build on a CUDA development base and add NCCL, e.g.
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04 \
#                --build-arg GPU_OPERATIONS=NCCL -t crpsgd-hvd:gpu .
# which installs NCCL from the CUDA apt repository of that base and builds Horovod with
# HOROVOD_GPU_OPERATIONS=NCCL.
# NOTE: no Docker engine runs where this file was written; neither variant has been built.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# Empty for the CPU build; NCCL for GPU collectives.
ARG GPU_OPERATIONS=

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    CRPSGD_VENV=/opt/venv \
    CRPSGD_CACHE=/opt/crpsgd-cache

# Horovod is built from source: a C++17 compiler, make and CMake 3.x are needed.
# The CUDA bases lack Python 3.11, which the pinned torch and Horovod require.
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make cmake \
 && if ! command -v python3.11 >/dev/null; then \
        apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev; fi \
 && if [ "$GPU_OPERATIONS" = "NCCL" ]; then \
        apt-get install -y --no-install-recommends libnccl2 libnccl-dev; fi \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/crpsgd_hvd
COPY . .
RUN python3.11 scripts/bootstrap.py --venv /opt/venv ${GPU_OPERATIONS:+--gpu-operations "$GPU_OPERATIONS"}

ENV PATH=/opt/venv/bin:$PATH
CMD ["horovodrun", "--check-build"]
