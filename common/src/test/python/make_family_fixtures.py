"""Builds small Llama-family checkpoints with transformers, and its reference outputs, for the engine's tests.

Run on the GPU machine (it has torch, transformers and tokenizers; nothing is downloaded):
    python3 common/src/test/python/make_family_fixtures.py OUT_DIR
and copy OUT_DIR/* into common/src/test/resources/fixtures/.

Each fixture covers what qwen2-tiny (../shared/fixtures) does not:
- llama3-tiny: Llama with Llama-3 rope scaling (type llama3), rope_theta 500000, an untied LM head, and a
  tokenizer whose post-processor adds a BOS token (as Llama 3's does).
- mistral-tiny: Mistral with a sliding window of 8 tokens (prompts are longer), one key/value head (MQA),
  an explicit head_dim (32, not hidden/heads = 16), float16 weights, sharded into several safetensors files
  with model.safetensors.index.json.
- llama-bias-tiny: Llama with attention_bias and mlp_bias (biases on q/k/v/o and gate/up/down), tied embeddings.

References are computed the way transformers runs a checkpoint directory: AutoModelForCausalLM.from_pretrained
(dir, dtype=float32) on CPU, one prompt at a time, greedy, eos ignored (unlike ../shared/fixtures, whose
references come from an in-memory model cast to bf16 and back, which rounds its rotary frequencies).
"""
import glob
import json
import os
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          PreTrainedTokenizerFast)

out = sys.argv[1]
texts = []
for f in sorted(glob.glob('/usr/lib/python3*/*.py'))[:400]:
    try:
        texts.append(open(f, encoding='utf-8').read())
    except Exception:
        pass


def make_tokenizer(vocab, bos):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ['<|endoftext|>', '<|begin_of_text|>']
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        tok.post_processor = processors.TemplateProcessing(single='<|begin_of_text|> $A', pair='<|begin_of_text|> $A $B',
                                                           special_tokens=[('<|begin_of_text|>', 1)])
    return tok


PROMPTS = ['def main():', 'import os\nimport sys', 'class Parser(object):\n    def __init__(self, text):',
           'The quick brown fox', 'for i in range(10):\n    print(i)\n    if i > 5:', '# Copyright',
           'return self.', 'x']
SPECS = {
    'llama3-tiny': (LlamaConfig, LlamaForCausalLM, dict(
        vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, rope_theta=500000.0, tie_word_embeddings=False,
        rms_norm_eps=1e-5, initializer_range=0.25,
        rope_scaling=dict(rope_type='llama3', factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64)), 'bfloat16', True, None, 16),
    'mistral-tiny': (MistralConfig, MistralForCausalLM, dict(
        vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=32, max_position_embeddings=512, rope_theta=10000.0, sliding_window=8,
        tie_word_embeddings=False, rms_norm_eps=1e-6, initializer_range=0.25), 'float16', False, '40KB', 24),
    'llama-bias-tiny': (LlamaConfig, LlamaForCausalLM, dict(
        vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=512, rope_theta=10000.0, tie_word_embeddings=True,
        attention_bias=True, mlp_bias=True, rms_norm_eps=1e-6, initializer_range=0.25), 'bfloat16', False, None, 16),
}
for seed, (name, (config_cls, model_cls, cfg, dtype, bos, shard, new_tokens)) in enumerate(SPECS.items()):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tok = make_tokenizer(cfg['vocab_size'], bos)
    torch.manual_seed(1000 + seed)
    conf = config_cls(**cfg, bos_token_id=1, eos_token_id=0, pad_token_id=0)
    model = model_cls(conf).to(getattr(torch, dtype))
    kwargs = dict(safe_serialization=True)
    if shard:
        kwargs['max_shard_size'] = shard
    model.save_pretrained(d, **kwargs)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token='<|endoftext|>', pad_token='<|endoftext|>',
                            bos_token='<|begin_of_text|>').save_pretrained(d)
    ref = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    cases = []
    for p in PROMPTS:
        ids = tok.encode(p).ids
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = ref(x).logits[0, -1]
            gen = ref.generate(x, max_new_tokens=new_tokens, do_sample=False, eos_token_id=None,
                               pad_token_id=0)[0, len(ids):].tolist()
        top2 = torch.topk(logits, 2).values
        cases.append(dict(prompt=p, input_ids=ids, greedy_ids=gen, greedy_text=tok.decode(gen),
                          last_logits_top5=torch.topk(logits, 5).indices.tolist(),
                          top2_margin=round(float(top2[0] - top2[1]), 5),
                          last_logits=[round(v, 5) for v in logits.tolist()]))
    json.dump(dict(model=name, reference='transformers ' + __import__('transformers').__version__ + ', torch '
                   + torch.__version__ + ', from_pretrained(dir, dtype=float32) on CPU, greedy, '
                   + str(new_tokens) + ' new tokens, eos ignored, one prompt at a time', cases=cases),
              open(os.path.join(d, 'reference.json'), 'w'), indent=1)
    print(name, sorted(os.listdir(d)))
