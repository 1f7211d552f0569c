"""tiktoken on the same documents as prolong-data's tokenize benchmark.

    python3 scripts/bench_tiktoken.py TOKENIZER_JSON DOCS_JSONL THREADS

Builds a tiktoken Encoding from an HF byte-level BPE tokenizer.json (the
vocabulary's byte strings as ranks, its Split regex as the pattern; ids are
ranks, which holds for Llama-3), encodes every document's "text" with
encode_ordinary_batch (no special tokens parsed, like our encoder), and prints
one JSON line: tokens, seconds (best of several runs), tokens_per_s, and the
sum of all ids so the caller can check the ids are the same as its own.
"""
import json
import sys
import time

import tiktoken


def byte_decoder():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def main():
    tokenizer_json, docs_jsonl, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = json.load(open(tokenizer_json, encoding="utf-8"))
    decode = byte_decoder()
    ranks = {bytes(decode[ch] for ch in tok): i for tok, i in spec["model"]["vocab"].items()}
    pre = spec["pre_tokenizer"]
    splits = pre.get("pretokenizers", [pre])
    pattern = next(p["pattern"]["Regex"] for p in splits if p.get("type") == "Split")
    enc = tiktoken.Encoding("bench", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    docs = [json.loads(line)["text"] for line in open(docs_jsonl, encoding="utf-8")]
    best = float("inf")
    tokens = id_sum = 0
    start = time.perf_counter()
    runs = 0
    while runs < 3 or time.perf_counter() - start < 5:
        t0 = time.perf_counter()
        out = enc.encode_ordinary_batch(docs, num_threads=threads)
        best = min(best, time.perf_counter() - t0)
        runs += 1
    tokens = sum(len(ids) for ids in out)
    id_sum = sum(sum(ids) for ids in out)
    print(json.dumps({"tokens": tokens, "seconds": best, "tokens_per_s": tokens / best, "id_sum": id_sum}))


if __name__ == "__main__":
    main()
