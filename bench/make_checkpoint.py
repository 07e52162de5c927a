"""Writes the benchmark checkpoint and workload, on the GPU machine, with transformers (no download).

The checkpoint has the shape of DeepSeek-R1-Distill-Qwen-1.5B (Qwen2: 28 layers, hidden 1536, 12 heads,
2 KV heads, FFN 8960, vocab 151936, untied LM head) with transformers' own random initialisation (seed 0),
saved in bf16 as published checkpoints are. The tokenizer is a word-level one over the 151936 ids (the
workload is already tokenized; the tokenizer only turns outputs into text). The workload: 512 prompts of
128-512 uniformly random token ids (seed 0).

usage: python3 bench/make_checkpoint.py OUT_DIR [--layers N]
"""
import json
import os
import sys

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import Qwen2Config, Qwen2ForCausalLM

out = sys.argv[1]
layers = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else 28
os.makedirs(out, exist_ok=True)
vocab = 151936
if not os.path.exists(os.path.join(out, "model.safetensors")) and not os.path.exists(os.path.join(out, "model.safetensors.index.json")):
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=1536, intermediate_size=8960, num_hidden_layers=layers,
                      num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=131072,
                      rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
                      bos_token_id=151646, eos_token_id=151643, use_sliding_window=False, sliding_window=4096)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(cfg)
    model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(os.path.join(out, "tokenizer.json"))
    print("checkpoint written to", out, "params", sum(p.numel() for p in model.parameters()))

g = torch.Generator().manual_seed(0)
with open(os.path.join(out, "prompts.jsonl"), "w") as f:
    for i in range(512):
        n = int(torch.randint(128, 513, (1,), generator=g))
        ids = torch.randint(0, vocab, (n,), generator=g).tolist()
        f.write(json.dumps({"id": i, "prompt_token_ids": ids}) + "\n")
print("workload written to", os.path.join(out, "prompts.jsonl"))
