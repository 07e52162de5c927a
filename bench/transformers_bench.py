"""The transformers side of submit/bench.sh: generate() in fp16 (or bf16) with SDPA attention on the same prompts and
batch sizes as the engine (greedy, 128 new tokens, eos ignored), prompts sorted by length and left-padded as
transformers needs for batched generation.

Decode time = time of generate(max_new_tokens=N) - time of generate(max_new_tokens=1) on the same batches
(the latter is the prefill and the first token).

usage: python3 bench/transformers_bench.py MODEL_DIR PROMPTS.jsonl OUT.json [--batch-sizes 1,8,64,256,512]
       [--dtype fp16|bf16]
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM

model_dir, prompts_file, out_file = sys.argv[1:4]
arg = lambda name, default: sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default
batch_sizes = [int(b) for b in arg("--batch-sizes", "1,8,64,256,512").split(",")]
max_new = int(arg("--max-new-tokens", "128"))
agreement_n = int(arg("--agreement-prompts", "16"))
dtype_name = arg("--dtype", "fp16")
dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
prompts = [json.loads(l)["prompt_token_ids"] for l in open(prompts_file) if l.strip()]


def prompts_for(batch):  # the same rule as EngineBench.promptsFor
    return min(len(prompts), max(4, 2 * batch))


def generate(model, chunk, new_tokens):
    width = max(len(p) for p in chunk)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in chunk], device="cuda")
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device="cuda")
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=0, eos_token_id=None)
    return out[:, width:]


def timed(model, subset, batch, new_tokens):
    torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(0, len(subset), batch):
        generate(model, subset[i:i + batch], new_tokens)
    torch.cuda.synchronize()
    return time.perf_counter() - t


def load(dtype):
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").cuda().eval()
    m.generation_config.eos_token_id = None
    m.generation_config.pad_token_id = 0
    return m


model = load(dtype)
timed(model, prompts[:8], 8, 16)  # warm-up
runs = []
for b in batch_sizes:
    subset = sorted(prompts[:prompts_for(b)], key=len)
    t1 = timed(model, subset, b, 1)
    tn = timed(model, subset, b, max_new)
    generated = len(subset) * max_new
    run = dict(batch_size=b, prompts=len(subset), prompt_tokens=sum(map(len, subset)), generated_tokens=generated,
               wall_s=tn, prefill_s=t1, decode_s=tn - t1,
               decode_tokens_per_s=len(subset) * (max_new - 1) / (tn - t1), e2e_tokens_per_s=generated / tn)
    runs.append(run)
    print("transformers:", json.dumps(run), flush=True)

first = prompts[:agreement_n]
ids_low = generate(model, first, max_new).tolist()  # unsorted, one batch: same as the engine's agreement run
del model
torch.cuda.empty_cache()
ids32 = generate(load(torch.float32), first, max_new).tolist()
json.dump(dict(runs=runs, dtype=dtype_name, agreement_ids=ids_low, agreement_ids_fp32=ids32,
               torch=torch.__version__, transformers=__import__("transformers").__version__,
               gpu=torch.cuda.get_device_name(0)), open(out_file, "w"), indent=1)
