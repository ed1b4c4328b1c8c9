#!/bin/sh
# One-shot setup for the compose stack (service `setup`); safe to run again.
#  1. the S3 bucket of IOVOLC_STORE_URL on the SeaweedFS endpoint
#  2. the Prefect process work pool
#  3. every deployment of deployments/prefect.yaml
# Needs: PREFECT_API_URL, IOVOLC_STORE_URL, IOVOLC_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY (from the environment; nothing secret is printed).
set -eu

: "${PREFECT_API_URL:?}" "${IOVOLC_STORE_URL:?}" "${IOVOLC_S3_ENDPOINT_URL:?}"
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
POOL="${IOVOLC_WORK_POOL:-iovolc-process}"
CODE_DIR="${IOVOLC_CODE_DIR:-/app}"

echo "setup: bucket for ${IOVOLC_STORE_URL} at ${IOVOLC_S3_ENDPOINT_URL}"
python - <<'PY'
import time

from iovolc.settings import load_settings
from iovolc.store import Store

settings = load_settings()
store = Store.from_settings(settings)
bucket = settings.store_url.split("://", 1)[1].split("/", 1)[0]
fs, _ = settings.fs(settings.store_url)
for attempt in range(30):
    try:
        if not fs.exists(bucket):
            fs.mkdir(bucket)
        fs.invalidate_cache()
        if fs.exists(bucket):
            break
    except OSError as exc:  # the S3 gateway may still be starting
        print(f"setup: bucket not ready ({type(exc).__name__}), retrying")
    time.sleep(2)
else:
    raise SystemExit(f"setup: could not create bucket {bucket!r}")
store.put_bytes("setup/ok", b"ok\n", overwrite=True)
print(f"setup: bucket {bucket!r} ready, store {store.url} writable")
PY

echo "setup: work pool ${POOL}"
prefect work-pool create "${POOL}" --type process --overwrite

echo "setup: deployments from deployments/prefect.yaml"
cd "${CODE_DIR}"
prefect --no-prompt deploy --all --prefect-file deployments/prefect.yaml
echo "setup: done"
