#!/usr/bin/env python3
"""Read TensorBoard event files with TensorBoard's own EventAccumulator and print them as JSON.

Usage: read_tb.py DIR_OR_EVENT_FILE

Prints one JSON object:
    {"scalars": {tag: [[step, value], ...]}, "texts": {tag: [[step, text], ...]}}
Scalars are in the order TensorBoard loaded them (file by file, record by record); values are the float32 the
file holds, widened to Python floats (exact). Texts are string tensors (the Text plugin's format).
Used by agents/tests/tensorboard_read.rs to check that real TensorBoard reads what rebel-rs writes.
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # size_guidance 0 = keep everything (the default keeps a sample of 10 000 scalars per tag).
    acc = event_accumulator.EventAccumulator(
        sys.argv[1],
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0},
    )
    acc.Reload()
    tags = acc.Tags()
    scalars = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    texts = {}
    for tag in tags["tensors"]:
        rows = []
        for e in acc.Tensors(tag):
            vals = e.tensor_proto.string_val
            rows.append([e.step, vals[0].decode("utf-8") if len(vals) == 1 else [v.decode("utf-8") for v in vals]])
        texts[tag] = rows
    json.dump({"scalars": scalars, "texts": texts}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
