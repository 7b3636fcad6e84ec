# shoal's container image: the static shoal binary on distroless/static
# (CA certificates for NATS over TLS, a nonroot user, nothing else).
#
#   docker build -t shoal .
#   docker run -p 4567:4567 -p 9567:9567 -v shoal-data:/data \
#     -e SHOAL_CREATE_STREAMS=orders:4,events:ON_DEMAND shoal
#
# Any further argument is a flag of "shoal server"; SHOAL_<FLAG> variables
# and --config set the others (see README, "Container").

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/shoal ./cmd/shoal && mkdir /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/shoal /shoal
# The data directory, owned by the image's user so a new volume is too.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
EXPOSE 4567 9567
ENTRYPOINT ["/shoal", "server", "--addr", "0.0.0.0:4567", "--admin-addr", "0.0.0.0:9567", "--data-dir", "/data"]
