"""Bucket helper for tests/it/s3.rs, run with the moto venv's python (boto3, pyarrow).

    bucket.py URL create BUCKET
    bucket.py URL list BUCKET            -> JSON list of keys
    bucket.py URL dump BUCKET [PREFIX]   -> JSON {key: {"etag": .., "size": .., "records": [..]}}

dump decodes each object by its extension: .json lines (gzip when .gz) into parsed values,
.parquet into row objects (pyarrow), anything else into the base64 of its (gunzipped) bytes.
"""
import base64
import gzip
import io
import json
import os
import sys

import boto3


def client(url):
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def keys(s3, bucket, prefix=""):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(out)


def decode(key, body):
    if key.endswith(".parquet"):
        import pyarrow.parquet as pq

        rows = pq.read_table(io.BytesIO(body)).to_pylist()
        for row in rows:
            for k, v in row.items():
                if isinstance(v, bytes):
                    row[k] = base64.b64encode(v).decode()
                elif hasattr(v, "isoformat"):
                    row[k] = v.isoformat()
        return rows
    if key.endswith(".gz"):
        body = gzip.decompress(body)
        key = key[:-3]
    if key.endswith(".json"):
        return [json.loads(line) for line in body.decode().splitlines()]
    return base64.b64encode(body).decode()


def main():
    url, cmd, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
    s3 = client(url)
    if cmd == "create":
        s3.create_bucket(Bucket=bucket)
    elif cmd == "list":
        print(json.dumps(keys(s3, bucket)))
    elif cmd == "dump":
        prefix = sys.argv[4] if len(sys.argv) > 4 else ""
        out = {}
        for key in keys(s3, bucket, prefix):
            obj = s3.get_object(Bucket=bucket, Key=key)
            body = obj["Body"].read()
            out[key] = {
                "etag": obj["ETag"].strip('"'),
                "size": len(body),
                "records": decode(key, body),
            }
        print(json.dumps(out))
    else:
        sys.exit(f"unknown command {cmd}")


main()
# pyarrow's thread pools can abort the interpreter's teardown ("terminate called without
# an active exception", exit 134) after the answer was printed: leave without tearing down.
sys.stdout.flush()
os._exit(0)
