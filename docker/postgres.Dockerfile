# PostgreSQL with file_fdw (part of the official image) and curl, which segment tables run to read.
# PG_MAJOR picks the server: 18 by default, 17 with `PG_MAJOR=17 docker compose build`; the other
# majors pg-offload supports (14 to 16) build the same way.
ARG PG_MAJOR=18
FROM postgres:${PG_MAJOR}
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
