# One image per function; the function is a build argument:
#   docker build --build-arg FUNCTION=order -t registry.example.com/shop/order:1.0.0 .
# (`node build.mjs --registry registry.example.com/shop --tag 1.0.0 --push` does this for all.)

# Build: bundle the one function with esbuild.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY build.mjs tsconfig.json ./
COPY shared/ shared/
COPY functions/ functions/
ARG FUNCTION
RUN test -n "$FUNCTION" || (echo "--build-arg FUNCTION=<name> is required" >&2; exit 1) \
 && node build.mjs "$FUNCTION"

# Run: only the bundle and its migrations, as the unprivileged user of the node image.
FROM node:22-bookworm-slim
ARG FUNCTION
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /src/dist/${FUNCTION}/ dist/${FUNCTION}/
RUN ln -s "dist/${FUNCTION}/index.mjs" main.mjs
USER node
EXPOSE 8080
CMD ["node", "--enable-source-maps", "main.mjs"]
