#!/bin/sh
# One-shot: create the app's bucket in MinIO (compose service `minio-setup`, image minio/mc).
# Idempotent: --ignore-existing makes a second run a no-op.
set -eu
: "${S3_ENDPOINT:?}" "${S3_BUCKET:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"

i=0
until mc alias set mallscale "$S3_ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then echo "minio-setup: ERROR: $S3_ENDPOINT not reachable within 60s" >&2; exit 1; fi
  sleep 1
done
mc mb --ignore-existing "mallscale/$S3_BUCKET"
echo "minio-setup: bucket $S3_BUCKET ready"
