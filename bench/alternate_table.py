"""The runs of builds alternated on one machine (`gpu/alternate.sh`) as one table: each run's completion tokens/s, its
ratio to `generate.sh`'s figure in the same call, its wall time and first inference task (the job's summary), and where
its time went before the inference tasks (its Spark timeline, from `spark_events.py`), then each build's mean.

usage: python3 bench/alternate_table.py DIR    # DIR holds LABEL-ROUND/ run directories (job.log, timeline.txt),
                                               # optionally order.txt (the runs' names in the order they ran: only
                                               # these, so that runs of an earlier call in DIR stay out; without it
                                               # every run, by name) and generate/generate-*.log (generate.sh's
                                               # summary line)

Times are seconds from the Spark application's start, except wall and first inference task (from the run's start, as
the job prints them). A column the run's files do not give is '-'.
"""
import glob
import os
import re
import sys

NUMBER = r"([\d.]+)"


def job_summary(text):
    """The job's summary figures: throughput, wall, first inference task, engine wait, model load."""
    def find(pattern):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None
    return dict(tokens=find(r"throughput\s+" + NUMBER + " completion tokens/s"),
                wall=find(r"wall time\s+" + NUMBER + " s"),
                first=find(r"first inference task at " + NUMBER + " s"),
                wait=find(r"waiting for engines " + NUMBER),
                load=find(r"ExecutorEngines: loaded .* in " + NUMBER + " s"))


def timeline(text):
    """The line count, planning and wave jobs' (start, end, duration) and the wave's second stage's first task, from
    spark_events.py's table."""
    jobs = {}
    for line in text.splitlines():
        m = re.match(r"\s*" + NUMBER + r"\s+" + NUMBER + r"\s+" + NUMBER + r"\s+\d+: (.*)", line)
        if not m:
            continue
        start, end, took, what = float(m.group(1)), float(m.group(2)), float(m.group(3)), m.group(4)
        for key, marker in (("count", "(count lines)"), ("plan", "plan (token counts)"), ("wave", "generate and write")):
            if marker in what and key not in jobs:
                jobs[key] = (start, end, took)
                if key == "wave":
                    firsts = re.findall(r"@\s+" + NUMBER, what)
                    jobs["inference"] = float(firsts[1]) if len(firsts) > 1 else None
    return jobs


def generate_figure(directory):
    for log in sorted(glob.glob(os.path.join(directory, "generate", "generate*.log"))):
        m = re.search(r"\(" + NUMBER + r" tokens/s;", open(log, encoding="utf-8").read())
        if m:
            return float(m.group(1))
    return None


def fmt(value, pattern="{:.2f}"):
    return "-" if value is None else pattern.format(value)


def main():
    directory = sys.argv[1]
    generate = generate_figure(directory)
    names = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(directory, "*-*", "job.log")))
    order = os.path.join(directory, "order.txt")
    if os.path.exists(order):
        ran = [line.strip() for line in open(order, encoding="utf-8") if line.strip()]
        names = [n for n in ran if n in names]
    runs = []
    for name in names:
        run_dir = os.path.join(directory, name)
        summary = job_summary(open(os.path.join(run_dir, "job.log"), encoding="utf-8").read())
        path = os.path.join(run_dir, "timeline.txt")
        jobs = timeline(open(path, encoding="utf-8").read()) if os.path.exists(path) else {}
        runs.append((name, summary, jobs))
    if generate is not None:
        print(f"generate.sh: {generate:,.1f} completion tokens/s")
    print("| run | completion tokens/s | of `generate.sh` | wall s | first inference task s | line count starts "
          "| line count s | to the planning job s | planning job s | to the wave s | the wave's map stage s "
          "| engine wait s (summed) | model load s |")
    print("| --- |" + " ---: |" * 12)
    means = {}
    for name, s, jobs in runs:
        count, plan, wave = jobs.get("count"), jobs.get("plan"), jobs.get("wave")
        ratio = s["tokens"] / generate if generate and s["tokens"] else None
        gap = lambda a, b: None if a is None or b is None else b[0] - a[1]
        print(f"| {name} | {fmt(s['tokens'], '{:,.0f}')} | {fmt(ratio, '{:.3f}')} | {fmt(s['wall'], '{:.1f}')} "
              f"| {fmt(s['first'], '{:.1f}')} | {fmt(count and count[0])} | {fmt(count and count[2])} "
              f"| {fmt(gap(count, plan))} | {fmt(plan and plan[2])} | {fmt(gap(plan, wave))} "
              f"| {fmt(None if wave is None or jobs.get('inference') is None else jobs['inference'] - wave[0])} "
              f"| {fmt(s['wait'], '{:.1f}')} | {fmt(s['load'])} |")
        if s["tokens"] is not None:
            means.setdefault(name.rsplit("-", 1)[0], []).append(s["tokens"])
    print()
    for label, values in means.items():
        mean = sum(values) / len(values)
        ratio = f" ({mean / generate:.3f} of generate.sh)" if generate else ""
        print(f"{label}: mean {mean:,.0f} completion tokens/s over {len(values)} runs{ratio}, "
              f"{min(values):,.0f}-{max(values):,.0f}")


if __name__ == "__main__":
    main()
