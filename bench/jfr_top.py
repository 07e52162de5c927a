"""Sums a Java Flight Recording's method samples: where a JVM's threads spend their time, for the host-side work
around the GPU (tokenizing, planning, writing, waiting on the device).

Reads `jfr print --stack-depth 300 --json --events jdk.ExecutionSample,jdk.NativeMethodSample REC.jfr` on stdin (jfr
prints 5 frames of each stack unless told more, which leaves the inclusive counts without the callers) and prints, per
thread (the threads with the most samples first): its samples, the methods on top of its stacks (self), and the methods of
our code and of the libraries on its stacks (inclusive, each counted once per sample). Java samples (running Java)
and native samples (inside a native method: JNI calls into libtorch, the tokenizer, or waiting on the GPU) are counted
apart, as JFR takes them apart.

usage: jfr print --stack-depth 300 --json --events jdk.ExecutionSample,jdk.NativeMethodSample REC.jfr \
           | python3 bench/jfr_top.py [--top 15]
"""
import argparse
import collections
import json
import sys


def method_name(frame):
    m = frame.get("method") or {}
    owner = (m.get("type") or {}).get("name", "?").replace("/", ".")
    return f"{owner}.{m.get('name', '?')}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--prefix", default="io.sparkinfer.,ai.djl.,org.apache.spark.",
                    help="packages whose frames the inclusive table counts")
    args = ap.parse_args()
    prefixes = tuple(p for p in args.prefix.split(",") if p)
    events = json.load(sys.stdin)["recording"]["events"]
    samples = collections.Counter()
    self_time = collections.defaultdict(collections.Counter)
    inclusive = collections.defaultdict(collections.Counter)
    for e in events:
        kind = "native" if e["type"].endswith("NativeMethodSample") else "java"
        v = e["values"]
        thread = (v.get("sampledThread") or {}).get("javaName") or "?"
        frames = ((v.get("stackTrace") or {}).get("frames")) or []
        key = (thread, kind)
        samples[key] += 1
        if frames:
            self_time[key][method_name(frames[0])] += 1
        seen = {method_name(f) for f in frames}
        for name in seen:
            if name.startswith(prefixes):
                inclusive[key][name] += 1
    by_thread = collections.Counter()
    for (thread, _), n in samples.items():
        by_thread[thread] += n
    print(f"{sum(samples.values())} samples in {len(by_thread)} threads")
    for thread, n in by_thread.most_common(args.threads):
        for kind in ("java", "native"):
            key = (thread, kind)
            if not samples[key]:
                continue
            print(f"\n== {thread} [{kind}]: {samples[key]} samples")
            print("  self:")
            for name, c in self_time[key].most_common(args.top):
                print(f"    {c:6d} {100.0 * c / samples[key]:5.1f}%  {name}")
            print("  inclusive (our code and libraries):")
            for name, c in inclusive[key].most_common(args.top):
                print(f"    {c:6d} {100.0 * c / samples[key]:5.1f}%  {name}")


if __name__ == "__main__":
    main()
