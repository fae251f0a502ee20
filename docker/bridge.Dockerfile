# Node 26, the active LTS (CI runs the suite on it); any Node in package.json's engines works.
FROM node:26-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENTRYPOINT ["node", "bin/pg-offload.js"]
CMD ["bridge"]
