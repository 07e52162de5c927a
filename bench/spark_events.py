"""A Spark event log as a timeline: when each Spark job of a run started and ended, what it was (its description
and stages, with their task counts), counted from the application's start; what a run does before its first
inference task.

Write the log uncompressed with the job's options spark.eventLog.enabled=true, spark.eventLog.dir=file:/tmp/events,
spark.eventLog.compress=false (as --conf, or as -D JVM options: bench/gpu/e2e.sh's E2E_JOB_JAVA_OPTS), then:

usage: python3 bench/spark_events.py /tmp/events/APP    # a log file, or a rolling log's directory (eventlog_v2_*)
"""
import glob
import json
import os
import sys


def lines(path):
    """The log's lines: one file, or a rolling log's events_N_* files in order."""
    files = [path]
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "events_*")),
                       key=lambda f: int(os.path.basename(f).split("_")[1]))
    for f in files:
        if f.endswith((".zstd", ".lz4", ".snappy", ".lzf")):
            sys.exit(f"{f} is compressed: write the log with spark.eventLog.compress=false")
        with open(f, encoding="utf-8") as text:
            yield from text


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    app_start = None
    jobs = {}
    stages = {}
    first_task = {}
    for line in lines(sys.argv[1]):
        e = json.loads(line)
        kind = e.get("Event")
        if kind == "SparkListenerApplicationStart":
            app_start = e["Timestamp"]
        elif kind == "SparkListenerJobStart":
            props = e.get("Properties") or {}
            jobs[e["Job ID"]] = {"start": e["Submission Time"], "stages": e.get("Stage IDs", []),
                                 "what": props.get("spark.job.description") or props.get("callSite.short", "")}
        elif kind == "SparkListenerJobEnd":
            jobs.setdefault(e["Job ID"], {})["end"] = e["Completion Time"]
        elif kind == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            stages[info["Stage ID"]] = (info["Stage Name"], info["Number of Tasks"], info.get("Submission Time"),
                                        info.get("Completion Time"))
        elif kind == "SparkListenerTaskStart":
            sid = e["Stage ID"]
            launch = e["Task Info"]["Launch Time"]
            first_task[sid] = min(first_task.get(sid, launch), launch)
    if app_start is None:
        sys.exit("no SparkListenerApplicationStart in " + sys.argv[1])

    def at(ms):
        return "-" if ms is None else f"{(ms - app_start) / 1000:7.2f}"

    print(f"{'start s':>7} {'end s':>7} {'job s':>6}  job: description [stages: name x tasks, first task s]")
    for jid in sorted(jobs):
        j = jobs[jid]
        took = (j["end"] - j["start"]) / 1000 if "end" in j and "start" in j else float("nan")
        parts = []
        for sid in j.get("stages", []):
            if sid in stages:
                name, tasks, _, _ = stages[sid]
                parts.append(f"{name.split(' at ')[0]} x{tasks} @{at(first_task.get(sid))}")
        print(f"{at(j.get('start'))} {at(j.get('end'))} {took:6.2f}  {jid}: {j.get('what', '')[:90]} "
              f"[{'; '.join(parts)}]")


if __name__ == "__main__":
    main()
