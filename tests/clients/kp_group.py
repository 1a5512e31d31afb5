"""A kafka-python consumer group on a 6-partition topic.

Phase 1: three members share the partitions; once their assignment is stable, 6,000
records are produced and every one must be received exactly once, each by the member
that owns its partition.

Phase 2: while a producer keeps writing, a fourth member joins, then the first one
leaves (close: commit, LeaveGroup). Every record must be received at least once, with
no offset missing on any partition, and the survivors must have seen both rebalances.

Delivery semantics: auto-commit (every 200 ms) of the positions poll() has returned.
kafka-python also commits them synchronously before every rebalance and on close(), and
a record is recorded before the next poll() can commit past it, so a rebalance repeats
nothing in practice; the guarantee, and what phase 2 asserts, is at least once.
Duplicates are counted and reported.

usage: kp_group.py BOOTSTRAP
"""

import sys
import threading
import time
import traceback

import common

common.check_imports()
common.watchdog(170)

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.consumer.subscription_state import ConsumerRebalanceListener  # noqa: E402

bootstrap = sys.argv[1]
TOPIC = "group-6"
GROUP = "group-6-readers"
PARTITIONS = 6
PHASE1 = 6000
lock = threading.Lock()


class Member(ConsumerRebalanceListener):
    def __init__(self, name):
        self.name = name
        self.records = []  # (partition, offset, key)
        self.assigned = []  # (monotonic time, partitions) per on_partitions_assigned
        self.revoked = 0
        self.assignment = frozenset()
        self.stop = threading.Event()
        self.closed = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)
        self.thread.start()

    def on_partitions_assigned(self, assigned):
        with lock:
            self.assigned.append((time.monotonic(), frozenset(tp.partition for tp in assigned)))

    def on_partitions_revoked(self, revoked):
        with lock:
            self.revoked += 1

    def run(self):
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=GROUP,
                client_id=self.name,
                auto_offset_reset="earliest",
                enable_auto_commit=True,
                auto_commit_interval_ms=200,
                session_timeout_ms=10000,
                heartbeat_interval_ms=300,
                max_poll_interval_ms=60000,
                fetch_max_wait_ms=100,
            )
            common.subscribe(consumer, TOPIC, listener=self)
            while not self.stop.is_set():
                batch = consumer.poll(timeout_ms=500)
                owned = frozenset(tp.partition for tp in consumer.assignment())
                with lock:
                    for tp, records in batch.items():
                        self.records.extend((tp.partition, r.offset, r.key) for r in records)
                    self.assignment = owned
            consumer.close(timeout_ms=10000)
        except BaseException:
            self.error = traceback.format_exc()
        finally:
            self.closed.set()


def check_errors(members):
    for m in members:
        if m.error:
            common.fail(f"consumer {m.name} failed:\n{m.error}")


def stable(members):
    """Every member owns some partitions, no two the same, together all of them."""
    with lock:
        owned = [m.assignment for m in members]
    union = frozenset().union(*owned)
    return all(owned) and sum(map(len, owned)) == PARTITIONS and len(union) == PARTITIONS


def wait_stable(members, what):
    def ok():
        check_errors(members)
        return stable(members)

    common.wait_until(
        ok, 60, what, lambda: str({m.name: sorted(m.assignment) for m in members}), poll=0.1
    )


def received(members):
    with lock:
        return [r for m in members for r in m.records]


common.create_topic(bootstrap, TOPIC, PARTITIONS)
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_block_ms=15000)

# Phase 1: three stable members, then exactly once.
m1, m2, m3 = Member("c1"), Member("c2"), Member("c3")
phase1 = [m1, m2, m3]
wait_stable(phase1, "for 3 consumers to share 6 partitions")
futures = [producer.send(TOPIC, key=f"p1-{i}".encode(), value=b"x") for i in range(PHASE1)]
producer.flush(timeout=60)
for f in futures:
    f.get(timeout=30)


def all_phase1_seen():
    check_errors(phase1)
    return len({k for _, _, k in received(phase1)}) == PHASE1


common.wait_until(
    all_phase1_seen, 60, "for the 3 consumers to receive phase 1",
    lambda: f"{len({k for _, _, k in received(phase1)})} of {PHASE1} keys", poll=0.1,
)
got = received(phase1)
if len(got) != PHASE1:
    common.fail(f"phase 1: {len(got)} deliveries of {PHASE1} records: duplicates in a stable group")
for m in phase1:
    with lock:
        parts = {p for p, _, _ in m.records}
        owned = m.assignment
    if not m.records:
        common.fail(f"phase 1: consumer {m.name} (owning {sorted(owned)}) received nothing")
    if not parts <= owned:
        common.fail(f"phase 1: consumer {m.name} owns {sorted(owned)} but received from {sorted(parts)}")

# Phase 2: keep producing while c4 joins and c1 leaves.
phase2_start = time.monotonic()
sent = []
stop_producing = threading.Event()
producer_error = []


def produce():
    try:
        i = 0
        while not stop_producing.is_set():
            batch = [producer.send(TOPIC, key=f"p2-{i + j}".encode(), value=b"y") for j in range(50)]
            producer.flush(timeout=30)
            for f in batch:
                f.get(timeout=30)
            sent.extend(f"p2-{i + j}".encode() for j in range(50))
            i += 50
            stop_producing.wait(0.05)
    except BaseException:
        producer_error.append(traceback.format_exc())


producer_thread = threading.Thread(target=produce, daemon=True)
producer_thread.start()
common.wait_until(lambda: len(sent) >= 500 or producer_error, 30, "for phase 2 production to start")
m4 = Member("c4")
wait_stable([m1, m2, m3, m4], "for c4 to join (4 consumers sharing 6 partitions)")
m1.stop.set()
common.wait_until(m1.closed.is_set, 30, "for c1 to close")
survivors = [m2, m3, m4]
wait_stable(survivors, "for c2, c3, c4 to take over c1's partitions")
before_stop = len(sent)
common.wait_until(
    lambda: len(sent) >= before_stop + 500 or producer_error, 30, "for production after c1 left"
)
stop_producing.set()
producer_thread.join(timeout=30)
if producer_error:
    common.fail(f"producer failed:\n{producer_error[0]}")
producer.close(timeout=10)

everyone = [m1, m2, m3, m4]
expected = {f"p1-{i}".encode() for i in range(PHASE1)} | set(sent)


def all_seen():
    check_errors(everyone)
    return expected <= {k for _, _, k in received(everyone)}


common.wait_until(
    all_seen, 60, "for every record to be received",
    lambda: f"missing {len(expected - {k for _, _, k in received(everyone)})} of {len(expected)}",
    poll=0.1,
)
for m in survivors:
    m.stop.set()
for m in survivors:
    common.wait_until(m.closed.is_set, 30, f"for {m.name} to close")
check_errors(everyone)

# No offset missing on any partition, and the group's commits reached the end.
probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
ends = probe.end_offsets(tps)
got = received(everyone)
for tp in tps:
    offsets = {o for p, o, _ in got if p == tp.partition}
    if offsets != set(range(ends[tp])):
        missing = sorted(set(range(ends[tp])) - offsets)[:10]
        common.fail(f"partition {tp.partition}: end offset {ends[tp]}, missing offsets {missing}...")
    committed = probe.committed(tp)
    if committed != ends[tp]:
        common.fail(f"partition {tp.partition}: group committed {committed}, end offset {ends[tp]}")
probe.close()
if sum(ends.values()) != len(expected):
    common.fail(f"the topic holds {sum(ends.values())} records, {len(expected)} were produced")

# Both rebalances were seen by the members that stayed, and c1 gave its partitions up.
for m in (m2, m3):
    later = [a for t, a in m.assigned if t >= phase2_start]
    if len(later) < 2:
        common.fail(f"{m.name} saw {len(later)} assignments in phase 2, expected 2 (c4 joined, c1 left)")
if not any(a for _, a in m4.assigned):
    common.fail("c4 was never assigned a partition")
if m1.revoked < 1:
    common.fail("c1 never had its partitions revoked")

duplicates = len(got) - len(expected)
print(
    f"kafka-python group ok: phase 1 {PHASE1} records exactly once over 3 consumers; "
    f"phase 2 {len(sent)} records during 2 rebalances, none lost, {duplicates} duplicates; "
    f"assignments seen: " + ", ".join(f"{m.name}={len(m.assigned)}" for m in everyone)
)
