# Node 24 (LTS): within the range pg-offload supports (package.json engines, 22.15 and newer).
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENTRYPOINT ["node", "bin/pg-offload.js"]
CMD ["bridge"]
