# The chat page and the leaderboard page: Streamlit and the lorabench package, no torch (both only
# talk to a server or read results). Built by serving/docker-compose.yml from the repository root.
FROM python:3.12-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PYTHONPATH=/app HF_HUB_OFFLINE=1

# The pages' dependencies (serving/ui-packages.txt) at the versions of uv.lock (the lock is only a
# constraint: nothing else of it is installed). EXTRA_PACKAGES adds more.
ARG EXTRA_PACKAGES=""
COPY pyproject.toml uv.lock serving/ui-packages.txt ./
RUN uv export --frozen --no-dev --no-hashes --no-emit-project -o /tmp/constraints.txt \
 && uv pip install --system --no-cache -c /tmp/constraints.txt -r ui-packages.txt ${EXTRA_PACKAGES} \
 && rm /tmp/constraints.txt

COPY . .
EXPOSE 8501 8502
CMD ["streamlit", "run", "serving/chat_app.py", "--server.address=0.0.0.0", "--server.headless=true"]
