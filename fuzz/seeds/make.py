#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets that read registry and API input:
unpack_layer (layer blobs), oci_manifest (manifests, indexes, configs) and openapi_request
(emulator requests). Each seed is named by the sha256 of its bytes, as libFuzzer names corpus
files. Run from the repository root: python3 fuzz/seeds/make.py (zstd seeds need the zstd
command; they are skipped without it)."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def write(target, data):
    path = os.path.join(ROOT, target)
    os.makedirs(path, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()[:16]
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def layer(entries, fmt=tarfile.PAX_FORMAT):
    """A tar of (name, kind, payload) entries; kind is file, dir, symlink or hardlink."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, kind, payload, *mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode[0] if mode else (0o755 if kind == "dir" else 0o644)
            info.uid = info.gid = 0
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE}[kind]
            info.linkname = payload or ""
            tar.addfile(info)
    return out.getvalue()


def layers():
    base = layer([
        ("etc", "dir", None), ("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\n"),
        ("bin", "dir", None), ("bin/busybox", "file", b"\x7fELF" + b"\0" * 60, 0o4755),
        ("bin/sh", "hardlink", "bin/busybox"), ("bin/ls", "symlink", "busybox"),
        ("run", "dir", None), ("var", "dir", None), ("var/run", "symlink", "/run"),
        ("var/run/lock", "file", "x"),  # Debian: written through var/run -> /run
    ])
    write("unpack_layer", base)
    write("unpack_layer", gzip.compress(base, mtime=0))
    whiteouts = layer([
        ("etc", "dir", None), ("etc/.wh.passwd", "file", ""),
        ("bin", "dir", None), ("bin/.wh..wh..opq", "file", ""), ("bin/true", "file", "t"),
    ])
    write("unpack_layer", gzip.compress(whiteouts, mtime=0))
    long = layer([("d/" + "n" * 300, "file", "long name"),
                  ("l", "symlink", "t" * 200)], fmt=tarfile.GNU_FORMAT)
    write("unpack_layer", long)
    write("unpack_layer", layer([("p/" + "x" * 150, "file", "pax"),
                                 ("p/link", "symlink", "../" * 60 + "etc")]))
    # Escapes the unpacker must refuse or keep inside the root.
    write("unpack_layer", layer([("../escape", "file", "x")]))
    write("unpack_layer", layer([("/abs", "file", "x")]))
    write("unpack_layer", layer([("up", "symlink", "../../.."), ("up/x", "file", "x")]))
    write("unpack_layer", layer([("h", "hardlink", "/etc/shadow")]))
    if shutil.which("zstd"):
        zst = subprocess.run(["zstd", "-q", "-c"], input=whiteouts, capture_output=True,
                             check=True).stdout
        write("unpack_layer", zst)


DIGEST = "sha256:" + "ab" * 32


def manifests():
    oci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": DIGEST, "size": 1469},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": "sha256:" + "cd" * 32, "size": 2_000_000},
                      {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                       "digest": "sha256:" + "ef" * 32, "size": 10}]}
    docker = dict(oci, mediaType="application/vnd.docker.distribution.manifest.v2+json")
    docker["config"] = dict(oci["config"],
                            mediaType="application/vnd.docker.container.image.v1+json")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST,
                  "size": 500, "platform": {"architecture": "amd64", "os": "linux"}},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": "sha256:" + "12" * 32, "size": 500,
                  "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": "sha256:" + "34" * 32, "size": 500,
                  "platform": {"architecture": "unknown", "os": "unknown"},
                  "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]}
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": ["/bin/sh"], "Env": ["PATH=/bin"], "User": "1000:1000"},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "cd" * 32]}}
    for doc in (oci, docker, index, config):
        write("oci_manifest", json.dumps(doc).encode())
    bad = dict(oci, config=dict(oci["config"], size=-1))
    write("oci_manifest", json.dumps(bad).encode())
    huge = dict(oci, config=dict(oci["config"], size=1 << 40))
    write("oci_manifest", json.dumps(huge).encode())


def requests():
    v1 = ("AccessKeyId=fuzz-key-id&Action=DescribeContainerGroups&Format=JSON&RegionId=cn-hangzhou"
          "&SignatureMethod=HMAC-SHA1&SignatureNonce=n1&SignatureVersion=1.0"
          "&Timestamp=2026-01-01T00%3A00%3A00Z&Version=2018-08-08&Signature=AAAA")
    write("openapi_request", (v1 + "\n\n").encode())
    form = ("RegionId=cn-hangzhou&ContainerGroupName=web&Container.1.Name=app"
            "&Container.1.Image=nginx&Container.1.Arg.1=-c&Container.1.Arg.2="
            "&Container.1.EnvironmentVar.1.Key=A&Container.1.EnvironmentVar.1.Value=%E2%9C%93"
            "&Tag.1.Key=k&Tag.1.Value=v")
    v3 = ("content-type: application/x-www-form-urlencoded\n"
          "authorization: ACS3-HMAC-SHA256 Credential=fuzz-key-id,"
          "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;"
          "x-acs-signature-nonce;x-acs-version,Signature=00\n"
          "host: 127.0.0.1:9\nx-acs-action: CreateContainerGroup\nx-acs-version: 2018-08-08\n"
          "x-acs-date: 2026-01-01T00:00:00Z\nx-acs-signature-nonce: n2\n"
          "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    write("openapi_request", ("RegionId=cn-hangzhou\n" + form + "\n" + v3).encode())
    write("openapi_request", b"a=%ZZ&b\n%\n")


if __name__ == "__main__":
    layers()
    manifests()
    requests()
