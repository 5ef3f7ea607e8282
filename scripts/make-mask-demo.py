#!/usr/bin/env python3
"""Builds data/mask-demo (the instance-segmentation demo, COCO format with masks) from the
sample nuclei image of the PyPI package `stardist` (BSD-3-Clause): a real fluorescence image of
the 2018 Kaggle Data Science Bowl (BBBC038) and its instance label image.

    pip download stardist==0.9.1 --no-deps -d /tmp/sd
    unzip -q /tmp/sd/stardist-0.9.1-*.whl -d /tmp/sd/x
    pip install tifffile pillow numpy pycocotools
    python3 scripts/make-mask-demo.py /tmp/sd/x/stardist/data/images data/mask-demo

Input: `img2d.tif` (512x512 uint16, one channel) and `mask2d.tif` (512x512 uint16, 0 =
background, k > 0 = nucleus k). Steps (deterministic):

1. The image is normalised like stardist's `normalize(x, 1, 99.8)` (percentiles of the whole
   image, numpy's default linear interpolation), clipped to [0, 1], scaled to 0..255, rounded,
   and replicated to 3 channels (8-bit RGB PNG).
2. Image and labels are cut into non-overlapping TILE x TILE tiles (4 x 4 = 16 tiles).
3. Per tile, every label present with at least MIN_PIXELS pixels inside the tile is one
   annotation: category 1 "nucleus", bbox [x, y, w, h] of its pixels (x_max + 1 - x_min),
   area = pixel count, iscrowd 0, segmentation = compressed COCO RLE
   (`pycocotools.mask.encode`, counts as str).
4. Test tiles are the anti-diagonal of the 4 x 4 grid (one per tile row and column); the others
   are train. Every second train tile (row-major order) stores its masks as polygons instead
   of RLE: the exact pixel-edge outline of the mask with its holes filled (pycocotools
   rasterises such an outline back to exactly these pixels; checked below). An instance with
   holes therefore gets a polygon mask that differs from its pixels by the holes (reported).
5. Both files are reloaded with pycocotools' COCO() and every mask is decoded and compared
   with the instance pixels.
"""
import json
import os
import sys

import numpy as np
import pycocotools.mask as mask_utils
import tifffile
from PIL import Image
from pycocotools.coco import COCO

TILE = 128
MIN_PIXELS = 10
STEM = "img2d"
CATEGORIES = [{"id": 1, "name": "nucleus", "supercategory": "nucleus"}]


def normalize_u8(x, pmin=1.0, pmax=99.8):
    x = x.astype(np.float64)
    mi, ma = np.percentile(x, pmin), np.percentile(x, pmax)
    y = np.clip((x - mi) / (ma - mi + 1e-20), 0.0, 1.0)
    return np.round(y * 255.0).astype(np.uint8)


def fill_holes(m):
    """Foreground plus every background pixel not 4-connected to the border."""
    h, w = m.shape
    bg = ~m
    outside = np.zeros((h + 2, w + 2), bool)
    pad = np.zeros((h + 2, w + 2), bool)
    pad[1:-1, 1:-1] = bg
    pad[0, :] = pad[-1, :] = pad[:, 0] = pad[:, -1] = True
    stack = [(0, 0)]
    outside[0, 0] = True
    while stack:
        r, c = stack.pop()
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h + 2 and 0 <= cc < w + 2 and pad[rr, cc] and not outside[rr, cc]:
                outside[rr, cc] = True
                stack.append((rr, cc))
    return ~outside[1:-1, 1:-1]


def outline_polygons(m):
    """Pixel-edge outlines of a hole-free mask, as COCO polygons (x, y on the pixel grid:
    pixel (r, c) is the square [c, c+1] x [r, r+1]). Every loop goes around foreground;
    collinear vertices are removed."""
    h, w = m.shape
    pad = np.zeros((h + 2, w + 2), bool)
    pad[1:-1, 1:-1] = m
    out = {}  # start vertex -> list of end vertices (directed edges, fg on the same side)
    rows, cols = np.nonzero(m)
    for r, c in zip(rows.tolist(), cols.tolist()):
        pr, pc = r + 1, c + 1
        if not pad[pr - 1, pc]:
            out.setdefault((c, r), []).append((c + 1, r))
        if not pad[pr, pc + 1]:
            out.setdefault((c + 1, r), []).append((c + 1, r + 1))
        if not pad[pr + 1, pc]:
            out.setdefault((c + 1, r + 1), []).append((c, r + 1))
        if not pad[pr, pc - 1]:
            out.setdefault((c, r + 1), []).append((c, r))
    polys = []
    while out:
        start = min(out)  # deterministic
        loop = [start]
        prev, cur = None, start
        while True:
            nexts = out[cur]
            if len(nexts) == 1:
                nxt = nexts[0]
            else:
                # two loops touch at this vertex (diagonal pixels): turn right, which keeps
                # 4-connected pieces apart
                dx, dy = cur[0] - prev[0], cur[1] - prev[1]
                right = (cur[0] - dy, cur[1] + dx)
                nxt = right if right in nexts else nexts[0]
            nexts.remove(nxt)
            if not nexts:
                del out[cur]
            prev, cur = cur, nxt
            if cur == start:
                break
            loop.append(cur)
        # drop collinear vertices
        n = len(loop)
        keep = []
        for i in range(n):
            a, b, c = loop[i - 1], loop[i], loop[(i + 1) % n]
            if (b[0] - a[0]) * (c[1] - b[1]) != (b[1] - a[1]) * (c[0] - b[0]):
                keep.append(b)
        polys.append([float(v) for p in keep for v in p])
    return polys


def rle_of(m):
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"]}


def dump_coco(path, coco):
    """COCO json with one image / annotation per line (small, diffable)."""
    def arr(items):
        return "[\n" + ",\n".join(json.dumps(x, separators=(",", ":")) for x in items) + "\n]"
    text = "{\n" + ",\n".join(f'"{k}": {arr(coco[k])}' for k in ("images", "annotations", "categories")) + "\n}\n"
    with open(path, "w") as f:
        f.write(text)


def main(src, dst):
    img = tifffile.imread(os.path.join(src, "img2d.tif"))
    lab = tifffile.imread(os.path.join(src, "mask2d.tif"))
    assert img.shape == lab.shape and img.ndim == 2, (img.shape, lab.shape)
    u8 = normalize_u8(img)
    H, W = img.shape
    nr, nc = H // TILE, W // TILE
    os.makedirs(os.path.join(dst, "images"), exist_ok=True)
    os.makedirs(os.path.join(dst, "annotations"), exist_ok=True)

    splits = {s: {"images": [], "annotations": [], "categories": CATEGORIES} for s in ("train", "test")}
    truth = {"train": {}, "test": {}}  # ann id -> instance pixels, for the check
    holes = []
    n_train_tiles = 0
    image_id = 0
    for r in range(nr):
        for c in range(nc):
            image_id += 1
            split = "test" if c == nc - 1 - r else "train"
            polygons = False
            if split == "train":
                polygons = n_train_tiles % 2 == 1
                n_train_tiles += 1
            name = f"{STEM}_r{r}_c{c}.png"
            y0, x0 = r * TILE, c * TILE
            tile = u8[y0:y0 + TILE, x0:x0 + TILE]
            Image.fromarray(np.stack([tile] * 3, axis=-1), "RGB").save(
                os.path.join(dst, "images", name), optimize=True)
            coco = splits[split]
            coco["images"].append({"id": image_id, "file_name": name, "width": TILE, "height": TILE})
            tl = lab[y0:y0 + TILE, x0:x0 + TILE]
            for k in np.unique(tl).tolist():
                if k == 0:
                    continue
                m = tl == k
                npix = int(m.sum())
                if npix < MIN_PIXELS:
                    continue
                ys, xs = np.nonzero(m)
                bbox = [int(xs.min()), int(ys.min()), int(xs.max() + 1 - xs.min()), int(ys.max() + 1 - ys.min())]
                if polygons:
                    filled = fill_holes(m)
                    seg = outline_polygons(filled)
                    back = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, TILE, TILE))).astype(bool)
                    assert np.array_equal(back, filled), (name, k)
                    if filled.sum() != npix:
                        holes.append((name, k, int(filled.sum()) - npix))
                else:
                    seg = rle_of(m)
                ann_id = len(coco["annotations"]) + 1
                coco["annotations"].append({
                    "id": ann_id, "image_id": image_id, "category_id": 1, "bbox": bbox,
                    "area": npix, "iscrowd": 0, "segmentation": seg,
                })
                truth[split][ann_id] = m

    for split, coco in splits.items():
        dump_coco(os.path.join(dst, "annotations", f"instances_{split}.json"), coco)

    # check: reload with pycocotools and decode every mask
    print(f"percentiles (1, 99.8) of {STEM}: {np.percentile(img.astype(np.float64), 1):.3f}, "
          f"{np.percentile(img.astype(np.float64), 99.8):.3f}")
    for split in ("train", "test"):
        api = COCO(os.path.join(dst, "annotations", f"instances_{split}.json"))
        n_poly = 0
        for ann_id, m in truth[split].items():
            a = api.anns[ann_id]
            dec = api.annToMask(a).astype(bool)
            if isinstance(a["segmentation"], list):
                n_poly += 1
                ok = np.array_equal(dec, fill_holes(m))
            else:
                ok = np.array_equal(dec, m)
            assert ok, (split, ann_id)
            assert a["area"] == m.sum()
        areas = [a["area"] for a in api.anns.values()]
        wh = [max(a["bbox"][2], a["bbox"][3]) for a in api.anns.values()]
        n_img = len(api.imgs)
        per = [len(api.getAnnIds(imgIds=[i])) for i in api.imgs]
        print(f"{split}: {n_img} tiles of {TILE}x{TILE}, {len(areas)} instances "
              f"({n_poly} polygon, {len(areas) - n_poly} RLE), "
              f"{len(areas) / n_img:.2f} per tile (min {min(per)}, max {max(per)}), "
              f"area {min(areas)}..{max(areas)} px (median {int(np.median(areas))}), "
              f"bbox long side {min(wh)}..{max(wh)} px")
    print(f"labels in mask2d: {len(np.unique(lab)) - 1} nuclei; "
          f"instances with holes (polygon = hole-filled): {holes if holes else 'none'}")
    print("all masks decode to their instance pixels")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
