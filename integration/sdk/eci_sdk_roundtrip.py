"""A client we did not write, against the emulator: the official ECI Python SDK
(alibabacloud-eci20180808) creates an image cache, waits for it to be Ready, creates a
container group from it, describes and deletes both.

Usage: python eci_sdk_roundtrip.py ENDPOINT IMAGE [IMAGE...]
Reads ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET, and ECI_SDK_SIGNATURE
("v3", the SDK's default ACS3-HMAC-SHA256, or "v1" for the RPC HMAC-SHA1 path).
Prints one JSON line with what it saw; exits non-zero on any failure.
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


def client(endpoint: str) -> Client:
    config = Config(
        access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        endpoint=endpoint,
        protocol="http",
        region_id=REGION,
    )
    if os.environ.get("ECI_SDK_SIGNATURE", "v3") == "v1":
        # tea-openapi's switch to the RPC path signed with HMAC-SHA1.
        config.signature_algorithm = "v2"
    return Client(config)


def wait_for(what, fetch, done, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}; last: {value}")
        time.sleep(0.5)


def main() -> None:
    endpoint, images = sys.argv[1], sys.argv[2:]
    eci = client(endpoint)
    seen = {}

    created = eci.create_image_cache(
        models.CreateImageCacheRequest(
            region_id=REGION,
            image_cache_name=f"sdk-{uuid.uuid4().hex[:8]}",
            image=images,
            image_cache_size=20,
            security_group_id="sg-emulator",
            v_switch_id="vsw-emulator",
            client_token=str(uuid.uuid4()),
        )
    ).body
    cache_id = created.image_cache_id
    assert cache_id and cache_id.startswith("imc-"), created
    seen["image_cache_id"] = cache_id

    def describe_cache():
        body = eci.describe_image_caches(
            models.DescribeImageCachesRequest(region_id=REGION, image_cache_id=cache_id)
        ).body
        return body.image_caches[0] if body.image_caches else None

    cache = wait_for(
        "the image cache to be Ready",
        describe_cache,
        lambda c: c is not None and c.status in ("Ready", "Failed"),
    )
    assert cache.status == "Ready", f"cache ended {cache.status}: {cache.events}"
    assert cache.progress == "100%", cache.progress
    seen["cache_status"] = cache.status

    group = eci.create_container_group(
        models.CreateContainerGroupRequest(
            region_id=REGION,
            container_group_name=f"sdk-{uuid.uuid4().hex[:8]}",
            security_group_id="sg-emulator",
            v_switch_id="vsw-emulator",
            restart_policy="Always",
            image_snapshot_id=cache_id,
            client_token=str(uuid.uuid4()),
            container=[
                models.CreateContainerGroupRequestContainer(
                    name="main",
                    image=images[0],
                    command=["sh", "-c", "echo hello; sleep 3600"],
                    image_pull_policy="IfNotPresent",
                )
            ],
        )
    ).body
    group_id = group.container_group_id
    assert group_id and group_id.startswith("eci-"), group
    seen["container_group_id"] = group_id

    def describe_group():
        body = eci.describe_container_groups(
            models.DescribeContainerGroupsRequest(
                region_id=REGION, container_group_ids=json.dumps([group_id])
            )
        ).body
        return body.container_groups[0] if body.container_groups else None

    running = wait_for(
        "the container group to run",
        describe_group,
        lambda g: g is not None and g.status in ("Running", "Failed", "ScheduleFailed"),
    )
    assert running.status == "Running", running.status
    assert running.containers[0].name == "main", running.containers
    seen["group_status"] = running.status

    eci.delete_container_group(
        models.DeleteContainerGroupRequest(region_id=REGION, container_group_id=group_id)
    )
    wait_for(
        "the container group to go",
        describe_group,
        lambda g: g is None or g.status in ("Terminating", "Succeeded", "Failed"),
    )
    eci.delete_image_cache(
        models.DeleteImageCacheRequest(region_id=REGION, image_cache_id=cache_id)
    )
    wait_for("the image cache to go", describe_cache, lambda c: c is None)
    seen["deleted"] = True
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
