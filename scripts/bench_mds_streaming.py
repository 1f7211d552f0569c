#!/usr/bin/env python3
"""The mosaicml-streaming side of prolong-mds's read benchmark
(crates/prolong-mds/examples/read_bench.rs runs it).

Reads every sample of a local MDS dataset through StreamingDataset
(shuffle=False, batch_size=1, no remote) two ways -- iterating it (mode
"iter", what a training loop does) and indexing it, dataset[i] for every i
(mode "getitem") -- sums each sample's input_ids with numpy (touching every
value), and prints one JSON line per pass:

    {"path": "plain", "mode": "iter", "pass": 0, "seconds": ..., "bytes": ...,
     "gbps": ..., "samples": ..., "checksum": ...}

bytes counts input_ids bytes only; checksum is the sum of all input_ids
modulo 2**32 (the Rust side checks it against its own). Timing covers the
reads, not the construction of the StreamingDataset.

For --zstd, each mode starts from a fresh StreamingDataset with only the
.zstd shards present (decompressed copies beside them are removed first), so
streaming decompresses each shard into the folder during pass 0: pass 0 is
cold, the later passes warm.

Exits 77, printing {"skip": reason}, when streaming cannot be imported.
"""

import argparse
import gc
import json
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", help="uncompressed dataset folder")
    parser.add_argument("--zstd", help="zstd dataset folder, without decompressed shards")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    try:
        import numpy as np
        from streaming import StreamingDataset
    except Exception as e:  # ImportError, or a broken torch underneath
        print(json.dumps({"skip": f"cannot import streaming: {type(e).__name__}: {e}"}))
        sys.exit(77)

    def samples_of(dataset, mode):
        if mode == "iter":
            yield from dataset
        else:
            for i in range(len(dataset)):
                yield dataset[i]

    def one_pass(dataset, mode) -> dict:
        checksum = 0
        nbytes = 0
        samples = 0
        start = time.perf_counter()
        for sample in samples_of(dataset, mode):
            ids = sample["input_ids"]
            checksum += int(ids.sum(dtype=np.uint64))
            nbytes += ids.nbytes
            samples += 1
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "bytes": nbytes,
            "gbps": nbytes / seconds / 1e9,
            "samples": samples,
            "checksum": checksum % 2**32,
        }

    for name, local in (("plain", args.plain), ("zstd", args.zstd)):
        if local is None:
            continue
        for mode in ("iter", "getitem"):
            if name == "zstd":
                remove_decompressed(local)
            dataset = StreamingDataset(local=local, remote=None, shuffle=False, batch_size=1)
            for k in range(args.passes):
                result = {"path": name, "mode": mode, "pass": k, **one_pass(dataset, mode)}
                print(json.dumps(result), flush=True)
            # Release its shared memory before the next one opens the folder.
            del dataset
            gc.collect()


def remove_decompressed(folder: str) -> None:
    """Removes the decompressed shards cached beside the .zstd ones."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith("shard.") and name.endswith(".mds") and os.path.exists(path + ".zstd"):
            os.remove(path)


if __name__ == "__main__":
    main()
