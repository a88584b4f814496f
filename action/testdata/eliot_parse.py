"""Rebuild the tasks of an Eliot log with Python's eliot.parse and print them
as JSON, for action's interop test: one object per task, complete tasks first,
each {"task_uuid", "complete", "root"} where a node is an action
{"action_type", "status", "level", "children"} or a message
{"message_type", "level"}."""
import json
import sys

from eliot.parse import Parser, WrittenAction


def node(n):
    if isinstance(n, WrittenAction):
        return {
            "action_type": n.action_type,
            "status": n.status,
            "level": n.task_level.to_string(),
            "children": [node(c) for c in n.children],
        }
    return {
        "message_type": n.contents.get("message_type"),
        "level": n.task_level.to_string(),
    }


def main(path):
    parser = Parser()
    tasks = []
    with open(path) as f:
        for line in f:
            completed, parser = parser.add(json.loads(line))
            tasks += [(t, True) for t in completed]
    tasks += [(t, False) for t in parser.incomplete_tasks()]
    out = [
        {"task_uuid": t.root().task_uuid, "complete": done, "root": node(t.root())}
        for t, done in tasks
    ]
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


main(sys.argv[1])
