"""Shared by the client scripts: failing loudly, bounded waits, topic creation.

Each script checks what it received itself, exits non-zero with one `FAIL:` line on any
mismatch, and prints one summary line on success. A watchdog bounds every script: on
expiry it dumps every thread's stack to stderr and exits.
"""

import faulthandler
import logging
import os
import sys
import time

# TRIBUTARY_CLIENT_DEBUG=1 logs the clients' protocol exchanges to stderr.
if os.environ.get("TRIBUTARY_CLIENT_DEBUG"):
    logging.basicConfig(
        level=logging.DEBUG,
        stream=sys.stderr,
        format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s",
    )

REQUIRED = ("kafka", "confluent_kafka", "snappy", "lz4", "zstandard", "crc32c")


def fail(message):
    """Print the failure and every thread's stack (where each client was), then exit 1."""
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    print("--- thread stacks at the failure:", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(1)


def check_imports():
    for name in REQUIRED:
        try:
            __import__(name)
        except ImportError as e:
            fail(f"python module {name} is missing ({e}); run ./scripts/test, which installs it")


def watchdog(seconds):
    """Exit (status 1, with every thread's stack on stderr) after `seconds`."""
    faulthandler.dump_traceback_later(seconds, exit=True)


class Deadline:
    def __init__(self, seconds, what):
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def expired(self):
        return time.monotonic() >= self.end

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def check(self, detail=""):
        if self.expired():
            fail(f"timed out after {self.seconds}s {self.what}" + (f": {detail}" if detail else ""))


def wait_until(condition, seconds, what, detail=lambda: "", poll=0.05):
    """Poll `condition` until it is true, failing after `seconds`."""
    deadline = Deadline(seconds, what)
    while not condition():
        deadline.check(detail())
        time.sleep(poll)


def subscribe(consumer, topic, listener=None):
    """Subscribe a kafka-python consumer to `topic` and load the topic's metadata before
    the first poll() joins the group.

    This works around a kafka-python 3.0.12 bug. A group leader that assigns partitions
    before its metadata knows the topic (the subscription's metadata request is only
    sent ~100 ms after bootstrap, the JoinGroup at once) rejoins on its own when the
    metadata arrives (assignment snapshot != metadata snapshot). If a poll() times out
    while that rejoin is in flight, the next poll() finds need_rejoin() False (the new
    assignment made the snapshots equal, and rejoin_needed was never set) and never
    applies the finished join: no assignment, heartbeats stay disabled, the member is
    expelled after session.timeout.ms and never rejoins. With the metadata loaded first,
    the first assignment already covers the topic, so that rejoin never happens.
    """
    consumer.subscribe([topic], listener=listener)
    wait_until(
        lambda: consumer.partitions_for_topic(topic),
        20,
        f"for the consumer's metadata to show topic {topic}",
    )


def create_topic(bootstrap, name, partitions):
    """Create a topic with kafka-python's admin client (CreateTopics), then wait until
    the broker's metadata shows every partition."""
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            timeout_ms=10000,
            raise_errors=True,
        )
    finally:
        admin.close()
    probe = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        wait_until(
            lambda: len(probe.partitions_for_topic(name) or ()) == partitions,
            20,
            f"for topic {name} to show {partitions} partitions",
            lambda: f"metadata shows {probe.partitions_for_topic(name)}",
            poll=0.1,
        )
    finally:
        probe.close()
