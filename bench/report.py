"""Merges the engine's and transformers' benchmark outputs (same call, same GPU) into one result file with
ratios and the bandwidth roofline, and prints a markdown table.

usage: python3 bench/report.py HF.json ENGINE.json MODEL_DIR COMMAND [--weight-bytes N --driver V] > bench/results/DATE-GPU.json

--weight-bytes and --driver re-make a report away from the GPU machine (when the call that measured was cut
short before its report): MODEL_DIR then needs only config.json, and the two values come from a report of
the same checkpoint and machine.
"""
import datetime
import glob
import json
import math
import subprocess
import sys

args = sys.argv[1:]


def option(name):
    if name not in args:
        return None
    i = args.index(name)
    value = args[i + 1]
    del args[i:i + 2]
    return value


given_weight_bytes, given_driver = option("--weight-bytes"), option("--driver")
hf = json.load(open(args[0]))
engine = json.load(open(args[1]))
model_dir, command = args[2], args[3]
cfg = json.load(open(model_dir + "/config.json"))

# HBM bandwidth by card (vendor figures, bytes/s); the roofline divides each decode step's bytes by it.
BANDWIDTH = {"H100 80GB HBM3": 3.35e12, "H100 PCIe": 2.0e12, "H100 NVL": 3.9e12, "H200": 4.8e12}
gpu = hf["gpu"]
bandwidth = next((v for k, v in BANDWIDTH.items() if k in gpu), None)
driver = given_driver or subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True).stdout.strip().splitlines()[0]

# Bytes one decode step reads: every weight but the embedding table (only B rows of it), in fp16, plus each
# row's keys and values over its context (mean prompt + half the new tokens).
if given_weight_bytes:
    weight_bytes = int(given_weight_bytes)
else:
    from safetensors import safe_open
    params = 0
    for f in glob.glob(model_dir + "/*.safetensors"):
        with safe_open(f, "pt") as st:
            for name in st.keys():
                if name != "model.embed_tokens.weight" or cfg.get("tie_word_embeddings"):
                    params += math.prod(st.get_slice(name).get_shape())
    weight_bytes = params * 2
kv_per_token = 2 * cfg["num_hidden_layers"] * cfg["num_key_value_heads"] * (cfg["hidden_size"] // cfg["num_attention_heads"]) * 2


def roofline(run):
    context = run["prompt_tokens"] / run["prompts"] + engine["max_new_tokens"] / 2
    rows = run["batch_size"] * run.get("threads", 1)
    step_bytes = weight_bytes + rows * context * kv_per_token
    return rows / (step_bytes / bandwidth) if bandwidth else None


def by_batch(runs, b, threads=1, backend="scripted", graphs=None):
    return next((r for r in runs if r["batch_size"] == b and r.get("threads", 1) == threads
                 and r.get("backend", backend) == backend
                 and (graphs is None or r.get("cuda_graphs", False) == graphs)), None)


def label(r):
    fused = " of fused kernels" if "fused decode kernels" in r.get("engine", "") else ""
    return r["backend"] + (" + CUDA graphs" + fused if r.get("cuda_graphs") else "")


def agreement(a, b):
    exact = sum(x == y for x, y in zip(a, b))
    prefix = [next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), len(x)) for x, y in zip(a, b)]
    return dict(prompts=len(a), identical=exact, rate=exact / len(a), mean_common_prefix=sum(prefix) / len(prefix),
                first_token_rate=sum(x[0] == y[0] for x, y in zip(a, b)) / len(a))


# the compute dtype both sides ran in (older files: fp16 under agreement_ids_fp16)
low = hf.get("dtype", "fp16")
hf_low_ids = hf.get("agreement_ids", hf.get("agreement_ids_fp16"))
hf256 = by_batch(hf["runs"], 256)
# The headline is the engine's default on a GPU: the scripted backend, with CUDA graphs when it ran them.
en256 = by_batch(engine["runs"], 256, graphs=True) or by_batch(engine["runs"], 256, graphs=False)
en256_no_graphs = by_batch(engine["runs"], 256, graphs=False)
best_hf = max(hf["runs"], key=lambda r: r["e2e_tokens_per_s"])
best_en = max((r for r in engine["runs"] if r["prompts"] == max(x["prompts"] for x in engine["runs"])),
              key=lambda r: r["e2e_tokens_per_s"])
result = dict(
    gpu=gpu, driver=driver, date=datetime.date.today().isoformat(), command=command,
    torch=hf["torch"], transformers=hf["transformers"], model="random DeepSeek-R1-Distill-Qwen-1.5B shape, " + low,
    engine_decode_tokens_per_s_b256=en256 and en256["decode_tokens_per_s"],
    engine_cuda_graphs_b256=en256 and en256.get("cuda_graphs", False),
    engine_b256=en256 and en256.get("engine"),
    engine_decode_tokens_per_s_b256_without_graphs=en256_no_graphs and en256_no_graphs["decode_tokens_per_s"],
    transformers_decode_tokens_per_s_b256=hf256 and hf256["decode_tokens_per_s"],
    decode_ratio_b256=en256 and hf256 and en256["decode_tokens_per_s"] / hf256["decode_tokens_per_s"],
    roofline_tokens_per_s_b256=en256 and roofline(en256),
    roofline_fraction_b256=en256 and bandwidth and en256["decode_tokens_per_s"] / roofline(en256),
    engine_e2e_tokens_per_s=best_en["e2e_tokens_per_s"], engine_e2e_best=dict(batch_size=best_en["batch_size"], threads=best_en.get("threads", 1)),
    transformers_e2e_tokens_per_s=best_hf["e2e_tokens_per_s"], transformers_e2e_best_batch=best_hf["batch_size"],
    greedy_agreement=agreement(engine["agreement_ids"], hf_low_ids),
    **{f"transformers_{low}_vs_fp32_agreement": agreement(hf_low_ids, hf["agreement_ids_fp32"])},
    weight_bytes=weight_bytes, bandwidth_bytes_per_s=bandwidth,
    engine_runs=engine["runs"], transformers_runs=hf["runs"])
print(json.dumps(result, indent=1))

lines = ["| side | backend | threads | batch | prompts | prefill s | decode s | decode tok/s | e2e tok/s | roofline |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for r in hf["runs"]:
    lines.append(f"| transformers | sdpa | 1 | {r['batch_size']} | {r['prompts']} | {r['prefill_s']:.2f} | {r['decode_s']:.2f} | "
                 f"{r['decode_tokens_per_s']:,.0f} | {r['e2e_tokens_per_s']:,.0f} | |")
for r in engine["runs"]:
    rf = roofline(r)
    lines.append(f"| sparkinfer | {label(r)} | {r['threads']} | {r['batch_size']} | {r['prompts']} | {r['prefill_s']:.2f} | "
                 f"{r['decode_s']:.2f} | {r['decode_tokens_per_s']:,.0f} | {r['e2e_tokens_per_s']:,.0f} | "
                 f"{(r['decode_tokens_per_s'] / rf if rf else float('nan')):.0%} |")
print("\n".join(lines), file=sys.stderr)
