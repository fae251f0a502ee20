# PostgreSQL with file_fdw (part of the official image) and curl, which segment tables run to read.
FROM postgres:17
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
