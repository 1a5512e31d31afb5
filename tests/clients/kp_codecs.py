"""kafka-python producers, one per compression codec plus an idempotent one, each writing
a 1-partition topic; a consumer reads every topic back and compares record by record:
offset, key, value (null values included), headers.

usage: kp_codecs.py BOOTSTRAP COUNT
"""

import sys

import common

common.check_imports()
common.watchdog(150)

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

bootstrap, count = sys.argv[1], int(sys.argv[2])

# (topic suffix, producer settings)
RUNS = [
    ("none", dict(compression_type=None, enable_idempotence=False, acks=1)),
    ("gzip", dict(compression_type="gzip", enable_idempotence=False, acks=1)),
    ("snappy", dict(compression_type="snappy", enable_idempotence=False, acks=1)),
    ("lz4", dict(compression_type="lz4", enable_idempotence=False, acks=1)),
    ("zstd", dict(compression_type="zstd", enable_idempotence=False, acks=1)),
    ("idempotent", dict(compression_type=None, enable_idempotence=True, acks="all")),
]


def expected(run, i):
    key = f"{run}-{i:06d}".encode()
    # Compressible text of varying length, every 50th value null (a tombstone).
    value = None if i % 50 == 49 else (f"value {i} of {run} " * (1 + i % 7)).encode()
    headers = [("n", str(i).encode()), ("run", run.encode())] if i % 10 == 0 else []
    return key, value, headers


for run, settings in RUNS:
    topic = f"kp-{run}"
    common.create_topic(bootstrap, topic, 1)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        batch_size=32 * 1024,
        request_timeout_ms=15000,
        max_block_ms=15000,
        **settings,
    )
    futures = []
    for i in range(count):
        key, value, headers = expected(run, i)
        futures.append(producer.send(topic, key=key, value=value, headers=headers, partition=0))
    producer.flush(timeout=60)
    for i, f in enumerate(futures):
        meta = f.get(timeout=30)
        if (meta.partition, meta.offset) != (0, i):
            common.fail(f"{run}: record {i} acknowledged at {meta.partition}/{meta.offset}, expected 0/{i}")
    producer.close(timeout=10)

consumer = KafkaConsumer(
    bootstrap_servers=bootstrap,
    enable_auto_commit=False,
    auto_offset_reset="earliest",
    request_timeout_ms=15000,
    fetch_max_wait_ms=200,
)
for run, _ in RUNS:
    topic = f"kp-{run}"
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    deadline = common.Deadline(60, f"reading {topic} back")
    while len(got) < count:
        deadline.check(f"{len(got)} of {count} records")
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    if len(got) != count:
        common.fail(f"{topic}: read {len(got)} records, produced {count}")
    for i, r in enumerate(got):
        key, value, headers = expected(run, i)
        if r.offset != i or r.key != key or r.value != value or list(r.headers) != headers:
            common.fail(
                f"{topic}: record {i} read back as offset={r.offset} key={r.key!r} "
                f"value={r.value!r} headers={r.headers!r}; "
                f"produced key={key!r} value={value!r} headers={headers!r}"
            )
    end = consumer.end_offsets([tp])[tp]
    if end != count:
        common.fail(f"{topic}: end offset {end}, expected {count}")
consumer.close()
print(f"kafka-python codecs ok: {len(RUNS)} producers x {count} records read back identical "
      f"({', '.join(r for r, _ in RUNS)})")
