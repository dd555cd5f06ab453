#!/usr/bin/env python3
import json, sys

task = json.load(sys.stdin)  # task_id, attempt, capability, deadline, input
print("working on", task["task_id"], file=sys.stderr, flush=True)  # progress
text = task["input"]["text"]
if not text:
    print("nothing to do yet", file=sys.stderr)
    sys.exit(75)  # temporary failure: try again later
print("partial", json.dumps({"done": 0.5}), file=sys.stderr, flush=True)
json.dump({"upper": text.upper()}, sys.stdout)  # the result
