#!/usr/bin/python3
"""Writes the edge-case Eliot logs in tree/testdata with Debian's python3-eliot
(1.13), then derives damaged variants from them.

Run from tree/testdata: /usr/bin/python3 gen/make_logs.py
"""
import gzip
import json
import random
import time

from eliot import (Message, add_destinations, log_message, start_action,
                   start_task, to_file, write_traceback)

out = open("edge.log", "w")
to_file(out)

# A fixed clock keeps the logs reproducible.
_now = [1795357700.0]


def tick(dt=0.0013):
    _now[0] += dt
    return _now[0]


time.time = tick
import eliot._message as _m  # noqa: E402
_m.time = tick

with start_action(action_type="edge:floats"):
    log_message(message_type="edge:numbers", tiny=1e-05, small=0.0001,
                big=1e16, bigger=123456789012345678.0, neg_zero=-0.0,
                nan=float("nan"), inf=float("inf"), ninf=float("-inf"),
                third=1 / 3, int_big=2**70, neg=-5, exp=1.5e-300)
    log_message(message_type="edge:strings",
                multi="line one\nline two\n\nline four",
                wide="é" * 150, astral="😀" * 120,
                ctrl="bell\x07 nul\x00 esc\x1b del\x7f",
                cr_only="a\rb", tab_key={"k\tk": 1, "k\nk": 2})
    log_message(message_type="edge:\x1b[31mcontrol\ttype\n")
    log_message(message_type="edge:nested",
                deep={"a": [{"b": [1, {"c": None}]}], "z": {}},
                list_of_lists=[[], [[]], [1.0]])
    Message.log(no_type_at_all=True)

with start_action(action_type="edge:second boundary"):
    _now[0] = 1795357700.9999996
    log_message(message_type="edge:rounds_up")
    _now[0] = 1795357700.9999994
    log_message(message_type="edge:rounds_down")

with start_action(action_type="edge:outer", x=1):
    with start_action(action_type="edge:middle"):
        with start_action(action_type="edge:inner"):
            try:
                with start_action(action_type="edge:deepest"):
                    raise ValueError("deep\nmultiline reason")
            except ValueError:
                write_traceback()
    log_message(message_type="edge:after")

log_message(message_type="edge:lonely", n=1)
out.close()

# Pin timestamps half a microsecond either side of a whole second, and
# keep the traceback free of this machine's paths.
fixed = []
for l in open("edge.log").read().splitlines(keepends=True):
    d = json.loads(l)
    if d.get("message_type") == "edge:rounds_up":
        d["timestamp"] = 1795357700.9999996
    elif d.get("message_type") == "edge:rounds_down":
        d["timestamp"] = 1795357700.9999994
    if "traceback" in d:
        d["traceback"] = d["traceback"].replace(__file__, "make_logs.py")
    fixed.append(json.dumps(d) + "\n")
write = None
with open("edge.log", "w") as f:
    f.writelines(fixed)
lines = fixed
nested = open("nested.log").read().splitlines(keepends=True)


def write(name, ls):  # noqa: F811
    with open(name, "w") as f:
        f.writelines(ls)


# Damaged and reordered variants of nested.log.
write("missing_start.log", [l for l in nested if '"task_level": [3, 1]' not in l])
write("missing_end.log", [l for l in nested if not ('"task_level": [4]' in l and "worker:batch" in l)])
write("missing_middle.log", [l for l in nested if '"task_level": [4, 2]' not in l])
write("duplicate.log", nested[:5] + [nested[3].replace('"sku": "A-1"', '"sku": "A-1-dup"')] + nested[5:])
rnd = random.Random(7)
shuffled = list(nested)
rnd.shuffle(shuffled)
write("shuffled.log", shuffled)
write("reversed.log", list(reversed(nested)))
write("rotated.1.log", nested[:12])
write("rotated.2.log", nested[12:])
# Compact spacing and raw UTF-8, as eliot >= 1.15 (orjson) writes.
compact = []
for l in nested:
    d = json.loads(l)
    compact.append(json.dumps(d, separators=(",", ":"), ensure_ascii=False) + "\n")
write("compact.log", compact)
with gzip.open("nested.log.gz", "wb") as f:
    f.write("".join(nested).encode())
write("invalid_json.log", nested[:25] + ['{"task_uuid": "cut-off", "task_level": [1\n'] + nested[25:])
write("not_eliot.log", nested[:3] + ['{"hello": "world", "n": 1}\n'] + nested[3:])
mt = [l.replace('"timestamp": 1795357700.1670697, ', '') for l in nested]
write("missing_timestamp.log", mt)
