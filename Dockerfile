# Transformer Workbench as a Hugging Face Docker Space (the Streamlit SDK is deprecated there).
# Free CPU Spaces: 2 vCPU, 16 GB. Build and run locally:
#   docker build -t workbench . && docker run -p 8501:8501 workbench
# Where Docker Hub or PyTorch's index cannot be reached, both can be replaced (bench/docker_offline.sh):
#   --build-arg PYTHON_IMAGE=<a local Python 3.11 image> --build-arg TORCH_PIP="--find-links <wheels>"
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false

# Spaces run the container as user 1000; its home must be writable (caches, saved runs).
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY --chown=user requirements.txt requirements-offline.txt ./
# torch first, from PyTorch's CPU index: PyPI's Linux wheel pulls several GB of CUDA libraries.
ARG TORCH_PIP="--index-url https://download.pytorch.org/whl/cpu"
RUN pip install torch==2.13.0 ${TORCH_PIP} \
 && pip install -r requirements.txt \
 && pip install --no-deps -r requirements-offline.txt

COPY --chown=user . .
USER user
ENV HOME=/home/user \
    WORKBENCH_WEIGHTS_DIR=/home/user/app/weights \
    WORKBENCH_WORKERS=2
# The starter runs (copy, reverse, sort, english, hamlet, a fine-tuned MiniLM), made by the project's own
# code at build time, so a class can open them the moment the Space starts. A few minutes.
RUN python -m model_zoo starter-runs

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"

# Spaces show the app inside an iframe, where Streamlit's XSRF cookie is blocked and uploads fail
# with "AxiosError 403" (streamlit/streamlit#9397, huggingface_hub#1496): the Space turns it off.
CMD ["streamlit", "run", "streamlit_app.py", "--server.address=0.0.0.0", "--server.port=8501", \
     "--server.enableXsrfProtection=false"]
