# syntax=docker/dockerfile:1
# sluice: a static binary on a distroless base, running as non-root.
#
#   docker build -t sluice .
#   docker run --rm -p 8080:8080 -p 127.0.0.1:9090:9090 sluice run --dev --http :8080 --admin :9090

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sluice ./cmd/sluice \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/sluice
USER nonroot:nonroot
VOLUME ["/var/lib/sluice"]
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["run", "--http", ":8080", "--admin", ":9090", "--data-dir", "/var/lib/sluice"]
