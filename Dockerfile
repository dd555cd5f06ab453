# The equilateral image: one static binary, no shell, a non-root user.
#
# It builds offline with the classic builder: the binary is built outside
# and copied in, so nothing is pulled (.ci/images does all of this):
#
#   CGO_ENABLED=0 go build -trimpath -o equilateral ./cmd/equilateral
#   docker build -t equilateral:dev .
#
# /data is where docker-compose.yml mounts the data volume; the data dir is
# /data/eq (not the mount point itself: init writes a data dir beside it and
# renames it into place). /data must belong to the image's user for a fresh
# volume to be writable, and a COPY of a directory is the one way to own a
# directory in a FROM scratch image: it brings the examples, which are also
# in /examples (/examples/flows/plan-code-review.yaml, /examples/policy.yaml),
# where a volume never hides them.
# `equilateral health` is the probe of the exec-form health checks.
FROM scratch
COPY equilateral /equilateral
COPY examples/ /examples/
COPY --chown=10001:10001 examples/ /data/
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["/equilateral"]
CMD ["--help"]
