# agentmem's HTTP service. Build with `docker compose build` (see docker-compose.yml), or
# `docker build -t agentmem .`; the image expects a Redis with Search and JSON in REDIS_URL.

# ---- build: compile TypeScript and bake the embedding model in --------------------------------
# bookworm-slim, not alpine: onnxruntime-node's prebuilt binaries need glibc.
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV AGENTMEM_CACHE_DIR=/app/.cache/agentmem

# Lockfile and .npmrc first so the dependency layer survives source edits. .npmrc has to be there
# before `npm ci`: it stops onnxruntime-node fetching CUDA libraries that CPU inference never uses.
COPY package.json package-lock.json .npmrc ./
RUN npm ci

COPY . .
# web/ is empty in git and so may be missing from the context; the runtime stage copies it anyway.
RUN npm run build && mkdir -p web

# `embed` provisions just the model (`provision` would also fetch a Redis Stack the image never
# runs) and then runs one inference, so a model or onnxruntime that can't work fails the build
# here rather than at container start. The downloaded jar is only the model's source archive.
RUN node dist/server/cli/main.js embed hello > /dev/null \
 && rm -rf "$AGENTMEM_CACHE_DIR/models/downloads"

# ---- runtime -----------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
# AGENTMEM_HOST: the service's default (127.0.0.1) would be unreachable from outside the container.
ENV NODE_ENV=production \
    AGENTMEM_CACHE_DIR=/app/.cache/agentmem \
    AGENTMEM_HOST=0.0.0.0 \
    AGENTMEM_PORT=8094

COPY package.json package-lock.json .npmrc ./
# onnxruntime-node ships native libraries for every OS (~220 MB for macOS and Windows alone);
# only Linux's can load here. Both Linux architectures stay, for arm64 hosts.
RUN npm ci --omit=dev \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
 && npm cache clean --force

# package.json must sit at /app: agentmem finds its root (and so src/lua, assets, web and the
# default cache) by walking up from dist/ to it. The Lua scripts are read from src/lua at runtime.
COPY --from=build /app/dist ./dist
COPY --from=build /app/src/lua ./src/lua
COPY --from=build /app/assets ./assets
COPY --from=build /app/web ./web
COPY --from=build /app/.cache/agentmem/models ./.cache/agentmem/models

# Everything above stays root-owned, so the service can read but not alter its code or model.
# 1000 is the base image's `node` user, given by number so a runtime can tell it isn't root
# without reading the image's /etc/passwd (Kubernetes' runAsNonRoot, for one).
USER 1000:1000
EXPOSE 8094
ENTRYPOINT ["node", "dist/server/cli/main.js"]
CMD ["serve"]
