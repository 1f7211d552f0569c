#!/usr/bin/env python3
"""HF transformers side of crates/prolong-train/tests/hf_interop.rs.

    python3 scripts/hf_interop.py JOBS.json

JOBS.json:
  {"make":   [{"dir": D, "seed": S, "config": {...LlamaConfig kwargs...},
               "max_shard_size": "200KB" | null}],
   "logits": [{"model": D, "batch": B.safetensors, "out": O.safetensors}]}

"make" jobs run first: a random LlamaForCausalLM (torch.manual_seed(S)), its norm weights
drawn uniform in [0.5, 1.5] so that they matter, written with
save_pretrained(safe_serialization=True[, max_shard_size]).

"logits" jobs load D in LlamaForCausalLM (torch_dtype float32, eager attention) and
write `logits` [T, V] (f32) for the batch `input_ids` [T] with optional `indices` [n, 2]:
each document [a, b) runs alone with position_ids a..b-1 (positions counted over the
packed sequence); a token no piece covers is a document of its own — the same as causal
attention restricted to documents (fixtures/hf-llama/README.md).
"""

import json
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM


def make(job):
    torch.manual_seed(job["seed"])
    cfg = LlamaConfig(**job["config"])
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    kw = {"safe_serialization": True}
    if job.get("max_shard_size"):
        kw["max_shard_size"] = job["max_shard_size"]
    model.save_pretrained(job["dir"], **kw)


def segments(t, indices):
    """Documents tiling [0, t), as prolong_train::PackedSequence cuts them."""
    out, nxt = [], 0
    for s, e in indices:
        if s == e:
            continue
        out.extend((u, u + 1) for u in range(nxt, s))
        out.append((s, e))
        nxt = e
    out.extend((u, u + 1) for u in range(nxt, t))
    return out


def logits(job, cache):
    model = cache.get(job["model"])
    if model is None:
        model = LlamaForCausalLM.from_pretrained(
            job["model"], torch_dtype=torch.float32, attn_implementation="eager"
        ).eval()
        cache[job["model"]] = model
    batch = load_file(job["batch"])
    ids = batch["input_ids"].long()
    t = ids.numel()
    indices = batch["indices"].long().tolist() if "indices" in batch else [[0, t]]
    parts = []
    with torch.no_grad():
        for a, b in segments(t, indices):
            out = model(
                input_ids=ids[a:b].unsqueeze(0),
                position_ids=torch.arange(a, b).unsqueeze(0),
                use_cache=False,
            )
            parts.append(out.logits[0].float())
    save_file({"logits": torch.cat(parts).contiguous()}, job["out"])


def main():
    jobs = json.load(open(sys.argv[1]))
    torch.set_num_threads(1)
    for job in jobs.get("make", []):
        make(job)
    cache = {}
    for job in jobs.get("logits", []):
        logits(job, cache)


if __name__ == "__main__":
    main()
