"""Stands in for Airflow's task runtime inside an emulated ECS container (executor scenario tests).

The executor's command is appended to this script's argv (ECS runs entryPoint + command). It reads
the workload JSON after --json-string and behaves according to the task id:
ok -> exit 0; fail -> exit 1; sleep -> run 60 s; oom -> allocate until killed; anything else -> exit 0.
FAKE_SLEEP (seconds) and FAKE_EXIT (exit code) in the environment override the task id's behaviour, so
two queueings of one task instance can behave differently.
"""

import json
import os
import sys
import time

payload = json.loads(sys.argv[sys.argv.index("--json-string") + 1])
if "callback" in payload:
    print(f"fake runtime: running callback {payload['callback']['id']}", flush=True)
    sys.exit(1 if payload["callback"]["data"].get("fail") else 0)
task_id = payload["ti"]["task_id"]
print(f"fake runtime: running {payload['ti']['dag_id']}.{task_id} try {payload['ti']['try_number']}", flush=True)
if os.environ.get("FAKE_SLEEP"):
    time.sleep(float(os.environ["FAKE_SLEEP"]))
if os.environ.get("FAKE_EXIT"):
    sys.exit(int(os.environ["FAKE_EXIT"]))
if task_id.startswith("fail"):
    sys.exit(1)
if task_id.startswith("sleep"):
    time.sleep(60)
if task_id.startswith("oom"):
    hog = [bytearray(50 * 1024 * 1024) for _ in range(40)]
    time.sleep(30)
sys.exit(0)
