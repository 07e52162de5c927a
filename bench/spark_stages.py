"""Each stage of a Spark application's event log: when it was submitted and done, its tasks' launch and finish times
(seconds from the application's start), and their mean deserialization, run, CPU, GC, shuffle-write and fetch-wait
times. A task whose run time is far above its CPU time waited: on other threads (the tokenizer's), on a lock (Spark's
compile cache), or on the device.

usage: python3 bench/spark_stages.py EVENT_LOG_DIR    # the directory spark_events.py reads (written uncompressed)
"""
import glob
import json
import sys


def main():
    logs = sorted(glob.glob(sys.argv[1] + "/events_*"))
    if not logs or logs[-1].endswith((".zstd", ".lz4", ".snappy", ".lzf")):
        sys.exit("no uncompressed event log in " + sys.argv[1] + " (run with spark.eventLog.compress=false)")
    start = None
    tasks = {}
    stages = {}
    for line in open(logs[-1], encoding="utf-8"):
        e = json.loads(line)
        kind = e["Event"]
        if kind == "SparkListenerApplicationStart":
            start = e["Timestamp"]
        elif kind == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            stages[info["Stage ID"]] = (info.get("Submission Time"), info.get("Completion Time"), info["Stage Name"])
        elif kind == "SparkListenerTaskEnd":
            m = e.get("Task Metrics") or {}
            i = e["Task Info"]
            tasks.setdefault(e["Stage ID"], []).append(dict(
                launch=i["Launch Time"], finish=i["Finish Time"], deser=m.get("Executor Deserialize Time", 0),
                run=m.get("Executor Run Time", 0), cpu=m.get("Executor CPU Time", 0) / 1e6, gc=m.get("JVM GC Time", 0),
                write=(m.get("Shuffle Write Metrics") or {}).get("Shuffle Write Time", 0) / 1e6,
                wait=(m.get("Shuffle Read Metrics") or {}).get("Fetch Wait Time", 0)))

    def s(ms):
        return (ms - start) / 1e3

    for sid, ts in sorted(tasks.items()):
        if sid not in stages:
            continue
        sub, done, name = stages[sid]
        n = len(ts)
        mean = {k: sum(t[k] for t in ts) / n for k in ("deser", "run", "cpu", "gc", "write", "wait")}
        print(f"stage {sid} {name[:24]}: submitted {s(sub):.2f} done {s(done):.2f} | {n} tasks launched "
              f"{s(min(t['launch'] for t in ts)):.2f}-{s(max(t['launch'] for t in ts)):.2f}, finished "
              f"{s(min(t['finish'] for t in ts)):.2f}-{s(max(t['finish'] for t in ts)):.2f} | mean ms: deserialize "
              f"{mean['deser']:.0f}, run {mean['run']:.0f} (max {max(t['run'] for t in ts)}), cpu {mean['cpu']:.0f}, gc "
              f"{mean['gc']:.0f}, shuffle write {mean['write']:.0f}, fetch wait {mean['wait']:.0f}")


if __name__ == "__main__":
    main()
