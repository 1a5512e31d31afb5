"""Committed offsets across broker restarts, with kafka-python group consumers.

  kp_commit.py commit BOOTSTRAP
      creates a 3-partition topic, writes 300 records to each partition, reads them all
      in group `resumers`, commits chosen offsets (with metadata) and checks them;
      prints the commits as one JSON line.
  kp_commit.py resume BOOTSTRAP COMMITS_JSON
      a new member of `resumers` must find exactly COMMITS_JSON committed and resume
      there: the first record it receives on each partition is the committed offset,
      nothing before it is delivered again, and everything after it arrives intact.
      It then commits new offsets and prints them as one JSON line.

The test kills or stops the broker between the runs.
"""

import json
import sys

import common

common.check_imports()
common.watchdog(100)

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

TOPIC = "resume-3"
GROUP = "resumers"
PARTITIONS = 3
PER_PARTITION = 300
TPS = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]


def value(p, offset):
    return f"partition {p} offset {offset}".encode()


def consumer():
    c = KafkaConsumer(
        bootstrap_servers=sys.argv[2],
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=100,
    )
    common.subscribe(c, TOPIC)
    return c


def consume_until(c, done, what):
    """Poll until done(records by partition) holds; returns the records by partition."""
    got = {p: [] for p in range(PARTITIONS)}
    deadline = common.Deadline(60, what)
    while not done(got):
        deadline.check(str({p: len(r) for p, r in got.items()}) + f" records, assignment {c.assignment()}")
        for tp, records in c.poll(timeout_ms=500).items():
            got[tp.partition].extend(records)
    return got


def commit_and_check(c, commits):
    offsets = {TopicPartition(TOPIC, p): OffsetAndMetadata(o, m, -1) for p, (o, m) in commits.items()}
    c.commit(offsets)
    for tp, want in offsets.items():
        got = c.committed(tp, metadata=True)
        if got is None or (got.offset, got.metadata) != (want.offset, want.metadata):
            common.fail(f"partition {tp.partition}: committed {want}, OffsetFetch answered {got}")
    print(json.dumps({str(p): [o, m] for p, (o, m) in commits.items()}), flush=True)


def check_records(got, start, end):
    for p in range(PARTITIONS):
        offsets = [r.offset for r in got[p]]
        if offsets != list(range(start[p], end[p])):
            head = offsets[:5]
            common.fail(
                f"partition {p}: expected offsets {start[p]}..{end[p]} in order, received "
                f"{len(offsets)} records starting {head}"
            )
        for r in got[p]:
            if r.value != value(p, r.offset):
                common.fail(f"partition {p} offset {r.offset}: value {r.value!r}, produced {value(p, r.offset)!r}")


if sys.argv[1] == "commit":
    common.create_topic(sys.argv[2], TOPIC, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=sys.argv[2], acks="all", linger_ms=5)
    futures = [
        producer.send(TOPIC, partition=p, value=value(p, i))
        for p in range(PARTITIONS)
        for i in range(PER_PARTITION)
    ]
    producer.flush(timeout=30)
    for f in futures:
        f.get(timeout=30)
    producer.close(timeout=10)
    c = consumer()
    got = consume_until(c, lambda g: all(len(r) >= PER_PARTITION for r in g.values()), "reading every record")
    check_records(got, [0] * PARTITIONS, [PER_PARTITION] * PARTITIONS)
    # Part of partition 0, almost none of 1, all of 2.
    commits = {0: (120, "first"), 1: (1, "one"), 2: (PER_PARTITION, "all")}
    commit_and_check(c, commits)
    c.close(autocommit=False)
    print(f"kafka-python commit ok: read {PARTITIONS} x {PER_PARTITION} records, committed {commits}")
elif sys.argv[1] == "resume":
    want = {int(p): (o, m) for p, (o, m) in json.loads(sys.argv[3]).items()}
    c = consumer()
    for tp in TPS:
        got = c.committed(tp, metadata=True)
        if got is None or (got.offset, got.metadata) != want[tp.partition]:
            common.fail(f"partition {tp.partition}: committed before the restart {want[tp.partition]}, "
                        f"after it OffsetFetch answers {got}")
    start = [want[p][0] for p in range(PARTITIONS)]
    end = [PER_PARTITION] * PARTITIONS
    got = consume_until(
        c,
        lambda g: all(start[p] + len(g[p]) >= end[p] for p in range(PARTITIONS))
        and len(c.assignment()) == PARTITIONS,
        "resuming from the committed offsets",
    )
    check_records(got, start, end)
    for tp in TPS:
        pos = c.position(tp)
        if pos != PER_PARTITION:
            common.fail(f"partition {tp.partition}: position {pos} after reading to the end")
    # New commits for the next restart: each partition rewound a different amount.
    commit_and_check(c, {p: (PER_PARTITION - 7 * (p + 1), f"after restart {p}") for p in range(PARTITIONS)})
    c.close(autocommit=False)
    print(f"kafka-python resume ok: resumed at {start} with the committed metadata, "
          f"{sum(len(r) for r in got.values())} records, none delivered again")
else:
    common.fail(f"unknown command {sys.argv[1]!r}")
