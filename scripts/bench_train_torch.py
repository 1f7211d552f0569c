#!/usr/bin/env python3
"""PyTorch eager (CPU) side of `cargo run --release -p prolong-train --example train_bench`.

    python3 scripts/bench_train_torch.py --data D.safetensors --config C.json --threads N

Trains the same Llama as prolong-train on the same packed sequences: one packed sequence
per step, forward + backward + AdamW (β 0.9/0.95, ε 1e-8, wd 0.1, PyTorch's default
foreach implementation), float32. PyTorch's fair best on CPU, written plainly:

* attention per document with F.scaled_dot_product_attention(is_causal=True, GQA) — the
  fused CPU flash-attention kernel — RoPE positions counted over the packed sequence;
* every activation kept (no recomputation: faster than ours, which recomputes layers);
* output projection + cross-entropy in blocks of 2,048 labeled tokens on a detached
  hidden state (the usual chunked-CE trick, so the [T, V] logits never exist at once),
  then one backward through the trunk.

D holds `input_ids` [S, T] (int64), `doc_counts` [S] and `doc_lens` [Σ counts]: sequence
0 is the warmup (only its first `warmup_tokens` tokens are used), 1.. are timed.
Prints one JSON line: {"tokens": ..., "seconds": ..., "tok_per_s": ..., "loss": ...}.
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

BLOCK = 2048


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        C, F_, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
        H, KV = c["num_attention_heads"], c["num_key_value_heads"]
        D = c.get("head_dim") or C // H
        self.H, self.KV, self.D = H, KV, D
        self.eps = c["rms_norm_eps"]
        lin = lambda o, i: torch.nn.Parameter(torch.randn(o, i) * 0.02)
        ones = lambda n: torch.nn.Parameter(torch.ones(n))
        self.embed = torch.nn.Parameter(torch.randn(V, C) * 0.02)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            m = torch.nn.Module()
            m.ln1, m.ln2 = ones(C), ones(C)
            m.wq, m.wk, m.wv, m.wo = lin(H * D, C), lin(KV * D, C), lin(KV * D, C), lin(C, H * D)
            m.wg, m.wu, m.wd = lin(F_, C), lin(F_, C), lin(C, F_)
            self.layers.append(m)
        self.norm = ones(C)
        self.lm_head = None if c.get("tie_word_embeddings") else torch.nn.Parameter(torch.randn(V, C) * 0.02)
        self.inv_freq = c["rope_theta"] ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, cos, sin):  # x [T, h, D]
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    def trunk(self, ids, docs):
        T = ids.numel()
        ang = torch.arange(T, dtype=torch.float64)[:, None] * self.inv_freq[None]
        cos, sin = ang.cos().float()[:, None], ang.sin().float()[:, None]
        x = self.embed[ids]
        for m in self.layers:
            n = self.rms(x, m.ln1)
            q = self.rope((n @ m.wq.T).view(T, self.H, self.D), cos, sin)
            k = self.rope((n @ m.wk.T).view(T, self.KV, self.D), cos, sin)
            v = (n @ m.wv.T).view(T, self.KV, self.D)
            outs = []
            for a, b in docs:
                o = F.scaled_dot_product_attention(
                    q[a:b].transpose(0, 1)[None], k[a:b].transpose(0, 1)[None],
                    v[a:b].transpose(0, 1)[None], is_causal=True, enable_gqa=True)
                outs.append(o[0].transpose(0, 1).reshape(b - a, -1))
            x = x + torch.cat(outs) @ m.wo.T
            n = self.rms(x, m.ln2)
            x = x + (F.silu(n @ m.wg.T) * (n @ m.wu.T)) @ m.wd.T
        return self.rms(x, self.norm)

    def step(self, ids, docs):
        """Token-mean loss; gradients accumulated into .grad."""
        pos = torch.cat([torch.arange(a, b - 1) for a, b in docs if b - a > 1])
        tgt = ids[pos + 1]
        h = self.trunk(ids, docs)
        hd = h.detach().requires_grad_()
        w = self.lm_head if self.lm_head is not None else self.embed
        n, total = pos.numel(), 0.0
        for s in range(0, n, BLOCK):
            p = pos[s:s + BLOCK]
            loss = F.cross_entropy(hd[p] @ w.T, tgt[s:s + BLOCK], reduction="sum") / n
            loss.backward()
            total += loss.item()
        h.backward(hd.grad)
        return total


def docs_of(lens):
    out, a = [], 0
    for l in lens:
        out.append((a, a + l))
        a += l
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup-tokens", type=int, default=2048)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    c = json.load(open(args.config))
    d = load_file(args.data)
    ids, counts, lens = d["input_ids"], d["doc_counts"].tolist(), d["doc_lens"].tolist()
    seqs, o = [], 0
    for i, k in enumerate(counts):
        seqs.append((ids[i], docs_of(lens[o:o + k])))
        o += k
    model = Llama(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)

    def train(ids, docs):
        opt.zero_grad(set_to_none=True)
        loss = model.step(ids, docs)
        opt.step()
        return loss

    # warmup: the first warmup_tokens tokens of sequence 0, documents cut there
    wid, wdocs = seqs[0]
    w = min(args.warmup_tokens, wid.numel())
    train(wid[:w], [(a, min(b, w)) for a, b in wdocs if a < w])
    tokens, t0, loss = 0, time.perf_counter(), 0.0
    for sid, sdocs in seqs[1:]:
        loss = train(sid, sdocs)
        tokens += sid.numel()
    dt = time.perf_counter() - t0
    print(json.dumps({"tokens": tokens, "seconds": dt, "tok_per_s": tokens / dt, "loss": loss}))


if __name__ == "__main__":
    main()
