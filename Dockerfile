# The operator's container image. No Docker engine runs in this project's CI; the build
# command below is the one `make release` runs, so what the image ships is what is tested.
#
#   docker build -t edgeone-cert-operator:dev .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edgeone-cert-operator

# distroless/cc: glibc and CA roots, no shell, non-root uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/edgeone-cert-operator /edgeone-cert-operator
USER 65532:65532
ENTRYPOINT ["/edgeone-cert-operator"]
CMD ["run"]
