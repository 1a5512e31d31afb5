"""kafka-connect-py (a third-party Kafka Connect REST client from PyPI) against a real
`tributary standalone` worker: list plugins, validate, create, status, pause/resume,
config update, active topics, restart, delete. The client raises on any HTTP error, so
every call doubles as a check of status codes; the bodies are checked here.

usage: kc_rest_client.py REST_URL INPUT_FILE
"""

import sys
import time

import common

common.watchdog(150)

try:
    from kafka_connect import KafkaConnect
    from requests.exceptions import HTTPError
except ImportError as e:
    common.fail(f"python module kafka_connect is missing ({e}); run ./scripts/test, which installs it")

url, input_file = sys.argv[1], sys.argv[2]
kc = KafkaConnect(url=url)
NAME = "py-source"


def check(cond, what):
    if not cond:
        common.fail(what)


def until(what, f, seconds=60):
    end = time.monotonic() + seconds
    while True:
        value = f()
        if value:
            return value
        if time.monotonic() > end:
            common.fail(f"{what}: still {value!r} after {seconds} s")
        time.sleep(0.05)


def state():
    s = kc.get_connector_status(NAME)
    return s["connector"]["state"], [t["state"] for t in s["tasks"]]


info = kc.get_cluster_info()
check(set(info) == {"version", "commit", "kafka_cluster_id"}, f"cluster info {info}")

plugins = until(
    "the file connectors",
    lambda: [p for p in kc.list_connector_plugins() if p["class"].endswith("FileStreamSourceConnector")],
)
check(plugins[0]["type"] == "source", f"plugin {plugins[0]}")

config = {"connector.class": "FileStreamSource", "file": input_file, "topic": "py-lines", "tasks.max": "1"}
validation = kc.validate_connector_config("FileStreamSource", {**config, "name": NAME})
check(validation["error_count"] == 0, f"validation {validation}")
bad = kc.validate_connector_config("FileStreamSource", {**config, "name": NAME, "tasks.max": "0"})
check(bad["error_count"] >= 1, f"tasks.max=0 validated: {bad}")

created = kc.create_connector({"name": NAME, "config": config})
check(created["name"] == NAME and created["type"] == "source", f"created {created}")
check(kc.list_connectors() == [NAME], f"list {kc.list_connectors()}")
until("running", lambda: state() == ("RUNNING", ["RUNNING"]))

kc.pause_connector(NAME)
until("paused", lambda: state() == ("PAUSED", ["PAUSED"]))
kc.resume_connector(NAME)
until("resumed", lambda: state() == ("RUNNING", ["RUNNING"]))

updated = kc.update_connector(NAME, {**config, "batch.size": "5"})
check(updated["config"]["batch.size"] == "5", f"updated {updated}")
check(kc.get_connector_config(NAME)["batch.size"] == "5", "config after update")
until("running after the update", lambda: state() == ("RUNNING", ["RUNNING"]))

topics = until(
    "the active topic",
    lambda: kc.list_connector_topics(NAME)[NAME]["topics"] == ["py-lines"] and kc.list_connector_topics(NAME),
)
check(topics == {NAME: {"topics": ["py-lines"]}}, f"topics {topics}")

# The client sends includeTasks=False / onlyFailed=False (Python's spelling).
kc.restart_connector(NAME)
plan = kc.restart_connector(NAME, include_tasks=True)
check(plan["connector"]["state"] == "RESTARTING", f"restart plan {plan}")
until("running after the restarts", lambda: state() == ("RUNNING", ["RUNNING"]))
tasks = kc.list_connector_tasks(NAME)
check(tasks[0]["id"] == {"connector": NAME, "task": 0}, f"tasks {tasks}")
check(kc.get_connector_task_status(NAME, 0)["state"] == "RUNNING", "task status")
expanded = kc.list_connectors(expand="status")
check(expanded[NAME]["status"]["connector"]["state"] == "RUNNING", f"expanded {expanded}")

kc.stop_connector(NAME)
until("stopped", lambda: state() == ("STOPPED", []))
kc.delete_connector(NAME)
check(kc.list_connectors() == [], "list after delete")
try:
    kc.get_connector(NAME)
    common.fail("a deleted connector was found")
except HTTPError as e:
    check(e.response is not None and e.response.status_code == 404, f"after delete: {e}")
    check(e.response.json()["error_code"] == 404, f"error body {e.response.text}")

print(f"OK kafka-connect-py drove {NAME} through its lifecycle", flush=True)
