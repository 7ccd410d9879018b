"""Reads one container group through the official ECI Python SDK (alibabacloud-eci20180808),
so a test sees the group as a client we did not write sees it.

Usage: python describe_group.py ENDPOINT GROUP_ID
Reads ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET. Prints the group as the
SDK's model maps it (one JSON object); exits non-zero when the group is not found.
"""

import json
import os
import sys

from alibabacloud_eci20180808 import models
from alibabacloud_eci20180808.client import Client
from alibabacloud_tea_openapi.models import Config

REGION = "cn-hangzhou"


def main() -> None:
    endpoint, group_id = sys.argv[1], sys.argv[2]
    client = Client(
        Config(
            access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            endpoint=endpoint,
            protocol="http",
            region_id=REGION,
        )
    )
    answer = client.describe_container_groups(
        models.DescribeContainerGroupsRequest(
            region_id=REGION, container_group_ids=json.dumps([group_id])
        )
    )
    groups = answer.body.container_groups or []
    if not groups:
        raise SystemExit(f"no container group {group_id}")
    print(json.dumps(groups[0].to_map()))


if __name__ == "__main__":
    main()
