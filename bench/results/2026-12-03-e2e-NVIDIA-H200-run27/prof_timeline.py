"""The PROF lines of a job's log (temporary timestamps, epoch milliseconds, printed by the instrumented build of
this directory's calls) as seconds from the Spark application's start, read from its event log.

usage: python3 prof_timeline.py RUN_DIR    # RUN_DIR holds job.log and ev/ (Spark's event log, uncompressed)
"""
import glob
import json
import re
import sys

run = sys.argv[1]
logs = sorted(glob.glob(run + "/ev/*/events_*"))  # the last application is the job (the first may be the archive's)
start = None
for line in open(logs[-1]):
    e = json.loads(line)
    if e["Event"] == "SparkListenerApplicationStart":
        start = e["Timestamp"]
        break
print("application start", start)
for line in open(run + "/job.log"):
    m = re.match(r"PROF (\d+) (.*)", line)
    if m:
        print("%7.3f %s" % ((int(m.group(1)) - start) / 1e3, m.group(2)))
