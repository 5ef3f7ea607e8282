#!/usr/bin/env python3
"""Regenerate the fashion-mnist-mini demo subset from the Debian Fashion-MNIST files.

Usage (from the repository root):

    python3 data/fashion-mnist-mini/make_subset.py [SOURCE_DIR] [--out OUT_DIR]

SOURCE_DIR holds the four gzipped IDX files of Fashion-MNIST
(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz); it defaults to the
location used by the Debian package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist). OUT_DIR defaults to the directory that
holds this script.

Python standard library only (gzip, struct, zlib, random). PNG files are
written by hand (8-bit grayscale, no interlace, filter type 0 on every row,
zlib level 9, no ancillary chunks), so the output is byte-for-byte stable for
a given zlib deflate implementation (stock zlib; a different deflate library
such as zlib-ng may produce different compressed bytes for the same pixels).

Selection (deterministic):
  * train: the first TRAIN_PER_CLASS images of each class from the official
    train split, in file order;
  * test:  the first TEST_PER_CLASS images of each class from the official
    t10k split, in file order.
Annotation lists (mmcls 0.x format, `<relative path> <label>`) are shuffled
with random.Random(SEED).
"""

import argparse
import gzip
import os
import random
import struct
import sys
import zlib

DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"
CLASSES = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
]
TRAIN_PER_CLASS = 120
TEST_PER_CLASS = 40
SEED = 0

# (output split name, IDX file prefix, images per class)
SPLITS = [
    ("train", "train", TRAIN_PER_CLASS),
    ("test", "t10k", TEST_PER_CLASS),
]


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 2051:
        raise ValueError(f"{path}: bad IDX3 magic {magic}")
    size = rows * cols
    if len(data) != 16 + n * size:
        raise ValueError(f"{path}: truncated ({len(data)} bytes)")
    return rows, cols, [data[16 + i * size:16 + (i + 1) * size] for i in range(n)]


def read_idx_labels(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic != 2049:
        raise ValueError(f"{path}: bad IDX1 magic {magic}")
    if len(data) != 8 + n:
        raise ValueError(f"{path}: truncated ({len(data)} bytes)")
    return list(data[8:])


def _chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png_gray8(pixels, width, height):
    """Encode raw 8-bit grayscale pixels (row-major bytes) as a PNG."""
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", default=DEFAULT_SOURCE,
                    help=f"directory with the gzipped IDX files (default: {DEFAULT_SOURCE})")
    ap.add_argument("--out", default=here, help="output directory (default: this script's directory)")
    args = ap.parse_args(argv)

    meta_dir = os.path.join(args.out, "meta")
    os.makedirs(meta_dir, exist_ok=True)
    lists = {}
    for split, prefix, per_class in SPLITS:
        rows, cols, images = read_idx_images(os.path.join(args.source, f"{prefix}-images-idx3-ubyte.gz"))
        labels = read_idx_labels(os.path.join(args.source, f"{prefix}-labels-idx1-ubyte.gz"))
        if len(images) != len(labels):
            raise ValueError(f"{prefix}: {len(images)} images but {len(labels)} labels")
        img_dir = os.path.join(args.out, "images", split)
        os.makedirs(img_dir, exist_ok=True)
        counts = [0] * len(CLASSES)
        entries = []
        for idx, label in enumerate(labels):
            if counts[label] >= per_class:
                continue
            counts[label] += 1
            name = f"{CLASSES[label]}_{idx:05d}.png"
            write_bytes(os.path.join(img_dir, name), png_gray8(images[idx], cols, rows))
            entries.append(f"images/{split}/{name} {label}")
            if all(c >= per_class for c in counts):
                break
        if any(c < per_class for c in counts):
            raise ValueError(f"{prefix}: not enough images per class: {counts}")
        random.Random(SEED).shuffle(entries)
        lists[split] = entries
        print(f"{split}: {len(entries)} images ({per_class} per class) -> {img_dir}", file=sys.stderr)

    text = {split: "".join(line + "\n" for line in entries) for split, entries in lists.items()}
    write_bytes(os.path.join(meta_dir, "train.txt"), text["train"].encode())
    write_bytes(os.path.join(meta_dir, "test.txt"), text["test"].encode())
    write_bytes(os.path.join(meta_dir, "val.txt"), text["test"].encode())  # val = test, as in the official configs
    write_bytes(os.path.join(args.out, "classes.txt"), "".join(c + "\n" for c in CLASSES).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
