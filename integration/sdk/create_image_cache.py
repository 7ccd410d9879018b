"""Makes an image cache the way an ECI user does outside Kubernetes: the official ECI Python
SDK (alibabacloud-eci20180808) calls CreateImageCache and waits for it to be Ready.

Usage: python create_image_cache.py ENDPOINT NAME SIZE_GIB IMAGE [IMAGE...]
Reads ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET. Prints one JSON line,
{"image_cache_id": ..., "status": "Ready"}; exits non-zero on any failure.
"""

import json
import os
import sys
import time
import uuid

from alibabacloud_eci20180808 import models
from alibabacloud_eci20180808.client import Client
from alibabacloud_tea_openapi.models import Config

REGION = "cn-hangzhou"


def main() -> None:
    endpoint, name, size, images = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    eci = Client(
        Config(
            access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            endpoint=endpoint,
            protocol="http",
            region_id=REGION,
        )
    )
    created = eci.create_image_cache(
        models.CreateImageCacheRequest(
            region_id=REGION,
            image_cache_name=name,
            image=images,
            image_cache_size=size,
            security_group_id="sg-emulator",
            v_switch_id="vsw-emulator",
            client_token=str(uuid.uuid4()),
        )
    ).body
    cache_id = created.image_cache_id
    deadline = time.monotonic() + 120
    while True:
        body = eci.describe_image_caches(
            models.DescribeImageCachesRequest(region_id=REGION, image_cache_id=cache_id)
        ).body
        cache = body.image_caches[0] if body.image_caches else None
        if cache is not None and cache.status in ("Ready", "Failed"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {cache_id}; last: {cache}")
        time.sleep(0.3)
    assert cache.status == "Ready", f"{cache_id} ended {cache.status}: {cache.events}"
    print(json.dumps({"image_cache_id": cache_id, "status": cache.status}))


if __name__ == "__main__":
    main()
