"""confluent-kafka (librdkafka 2.x): producers with and without idempotence, each with a
different compression codec, write one 3-partition topic; a group consumer reads it all
back, committing as it goes. Every record must arrive exactly once, intact, in each
producer's order within each partition, and the group's commits must reach the end.

usage: ck_roundtrip.py BOOTSTRAP COUNT_PER_PRODUCER
"""

import sys

import common

common.check_imports()
common.watchdog(150)

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

bootstrap, count = sys.argv[1], int(sys.argv[2])
TOPIC = "ck-3"
GROUP = "ck-readers"
PARTITIONS = 3
PRODUCERS = [
    ("idem-lz4", {"enable.idempotence": True, "compression.type": "lz4"}),
    ("idem-none", {"enable.idempotence": True, "compression.type": "none"}),
    ("plain-zstd", {"enable.idempotence": False, "acks": "1", "compression.type": "zstd"}),
    ("plain-gzip", {"enable.idempotence": False, "acks": "all", "compression.type": "gzip"}),
    ("plain-snappy", {"enable.idempotence": False, "acks": "1", "compression.type": "snappy"}),
]


def value(name, i):
    return f"{name} record {i} ".encode() * (1 + i % 5)


admin = AdminClient({"bootstrap.servers": bootstrap})
for topic, f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], request_timeout=15).items():
    try:
        f.result(timeout=20)
    except KafkaException as e:
        common.fail(f"CreateTopics {topic}: {e}")

errors = []
for name, settings in PRODUCERS:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 30000, **settings})
    acked = []

    def on_delivery(err, msg, acked=acked, name=name):
        if err is not None:
            errors.append(f"{name}: delivery of {msg.key()!r} failed: {err}")
        else:
            acked.append((msg.partition(), msg.offset()))

    for i in range(count):
        while True:
            try:
                p.produce(TOPIC, key=f"{name}-{i}".encode(), value=value(name, i), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    if left:
        common.fail(f"{name}: {left} records still undelivered after 60 s")
    if errors:
        common.fail("; ".join(errors[:5]))
    if len(acked) != count or len(set(acked)) != count:
        common.fail(f"{name}: {len(acked)} acknowledgements ({len(set(acked))} distinct) for {count} records")

consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": GROUP,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "session.timeout.ms": 10000,
    "fetch.wait.max.ms": 100,
})
consumer.subscribe([TOPIC])
seen = {}  # key -> (partition, offset)
order = {}  # (producer, partition) -> last index
duplicates = []
expected_total = count * len(PRODUCERS)
deadline = common.Deadline(90, "reading every record back in the group")
while len(seen) < expected_total:
    deadline.check(f"{len(seen)} of {expected_total} records")
    batch = consumer.consume(num_messages=1000, timeout=0.5)
    for m in batch:
        if m.error():
            common.fail(f"consumer error: {m.error()}")
        key = m.key().decode()
        name, i = key.rsplit("-", 1)
        i = int(i)
        if m.value() != value(name, i):
            common.fail(f"{key} at {m.partition()}/{m.offset()}: value {m.value()[:60]!r}..., produced {value(name, i)[:60]!r}...")
        if key in seen:
            duplicates.append((key, seen[key], (m.partition(), m.offset())))
        seen[key] = (m.partition(), m.offset())
        last = order.get((name, m.partition()), -1)
        if i <= last:
            common.fail(f"{name}: partition {m.partition()} delivered record {i} after record {last}")
        order[(name, m.partition())] = i
    if batch:
        consumer.commit(asynchronous=False)
if duplicates:
    common.fail(f"{len(duplicates)} records delivered twice, e.g. {duplicates[:3]}")
if len(seen) != expected_total:
    common.fail(f"received {len(seen)} distinct records, produced {expected_total}")

tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
committed = consumer.committed(tps, timeout=10)
total = 0
for tp in committed:
    low, high = consumer.get_watermark_offsets(tp, timeout=10)
    total += high - low
    if tp.error or tp.offset != high:
        common.fail(f"partition {tp.partition}: committed {tp.offset} ({tp.error}), high watermark {high}")
if total != expected_total:
    common.fail(f"the topic holds {total} records, {expected_total} were produced")
consumer.close()
print(f"confluent-kafka ok: {len(PRODUCERS)} producers x {count} records "
      f"({', '.join(n for n, _ in PRODUCERS)}) read back once each by a group consumer, commits at the end")
