# The broker as a container: `docker build -t hearth-broker .`, then run it with a PostgreSQL URL
# (HEARTH_DATABASE) to make it one of several replicas, or without for SQLite under /data.
# deploy/k8s/ runs it on Kubernetes.
FROM node:20-slim AS build
WORKDIR /app
# better-sqlite3 is a native addon: its prebuilt binary is fetched at install; the compiler is there
# for platforms that have none.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production HEARTH_DATA_DIR=/data
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 7777
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["broker", "--host", "0.0.0.0", "--port", "7777"]
