FROM python:3.11-slim
# The system packages the renderer needs, the same as `make system-deps` checks for:
# DejaVu (text), Noto Color Emoji (emoji on cards), espeak-ng (narration); openssl and nginx
# as well, the list being the same (tests/core/test_packaging.py). In production nginx runs in
# front of the instances on its own (docs/deploy.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-noto-color-emoji espeak-ng \
       openssl nginx \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir .
ENV DATA_DIR=/data
EXPOSE 8000
# `python -m app.main` is uvicorn with the settings' server options (h11 with a bound on request
# headers, trusted proxies from FORWARDED_ALLOW_IPS); see README "Running behind a proxy".
CMD ["python", "-m", "app.main", "--host", "0.0.0.0", "--port", "8000"]
