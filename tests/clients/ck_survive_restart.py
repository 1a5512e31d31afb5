"""confluent-kafka clients riding through a broker crash: an idempotent producer and a
group consumer run while the test SIGKILLs the broker and restarts it on the same port
and data directory.

The script prints `KILL NOW` once both clients are in full flow, keeps producing and
consuming through the outage, then checks: every record the producer had acknowledged
(before or after the crash) is consumed, each one intact; the consumer rejoined the
group after the restart (the coordinator forgets members on restart) and went on from
its committed offsets. Records in flight at the kill may be written twice (the broker
does not persist idempotent producer state, see src/broker/producer.rs) and auto-commit
is at least once: duplicates are counted, not failed.

usage: ck_survive_restart.py BOOTSTRAP
"""

import sys
import time

import common

common.check_imports()
common.watchdog(150)

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

bootstrap = sys.argv[1]
TOPIC = "survivor"

admin = AdminClient({"bootstrap.servers": bootstrap})
for topic, f in admin.create_topics([NewTopic(TOPIC, 3, 1)], request_timeout=15).items():
    f.result(timeout=20)

acked = {}  # key -> value
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(f"delivery of {msg.key()!r} failed: {err}")
    else:
        acked[msg.key()] = msg.value()


producer = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "linger.ms": 5,
    "compression.type": "lz4",
    "message.timeout.ms": 60000,
    "reconnect.backoff.max.ms": 500,
})
assigned = []
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "survivors",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 200,
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 500,
    "reconnect.backoff.max.ms": 500,
})
consumer.subscribe([TOPIC], on_assign=lambda c, ps: assigned.append((time.monotonic(), len(ps))))
received = {}  # key -> times received
bad = []
sent = 0


def step():
    """Produce 20 records and consume what is there."""
    global sent
    for _ in range(20):
        key = f"k{sent}".encode()
        producer.produce(TOPIC, key=key, value=b"value of " + key, on_delivery=on_delivery)
        sent += 1
    producer.poll(0)
    for m in consumer.consume(num_messages=500, timeout=0.01):
        if m.error():
            continue  # transient errors while the broker is down; loss is checked below
        if m.value() != b"value of " + m.key():
            bad.append((m.key(), m.value()))
        received[m.key()] = received.get(m.key(), 0) + 1


# Steady state first: both clients working, the consumer has its partitions.
start = common.Deadline(60, "for the producer and the consumer to get going")
while len(received) < 2000 or len(acked) < 2000:
    start.check(f"{len(acked)} acknowledged, {len(received)} received")
    step()
    time.sleep(0.01)  # pace the producer: about 2,000 records a second
acked_before = len(acked)
print("KILL NOW", flush=True)
kill_time = time.monotonic()
# Keep going through the outage and well past it.
deadline = common.Deadline(60, "producing through the restart")
while time.monotonic() - kill_time < 8 or len(acked) < acked_before + 2000:
    deadline.check(f"{len(acked)} acknowledged ({acked_before} before the kill)")
    step()
    time.sleep(0.01)  # the same pace
left = producer.flush(60)
if left:
    common.fail(f"{left} records still undelivered 60 s after the restart")
if errors:
    common.fail(f"{len(errors)} deliveries failed, e.g. {errors[:3]}")
drain = common.Deadline(60, "for every acknowledged record to be consumed")
while set(acked) - set(received):
    drain.check(f"missing {len(set(acked) - set(received))} of {len(acked)}")
    for m in consumer.consume(num_messages=1000, timeout=0.2):
        if not m.error():
            if m.value() != b"value of " + m.key():
                bad.append((m.key(), m.value()))
            received[m.key()] = received.get(m.key(), 0) + 1
if bad:
    common.fail(f"{len(bad)} records read back altered, e.g. {bad[:3]}")
unknown = set(received) - set(acked)
if unknown:
    common.fail(f"consumed {len(unknown)} records never acknowledged, e.g. {sorted(unknown)[:3]}")
rejoined = [n for t, n in assigned if t > kill_time]
if not rejoined:
    common.fail(f"the consumer was never assigned partitions again after the restart (assignments {assigned})")
consumer.close()
duplicates = sum(received.values()) - len(received)
print(f"confluent-kafka restart ok: {len(acked)} records acknowledged ({acked_before} before the kill), "
      f"all consumed after the consumer rejoined; {duplicates} delivered more than once")
