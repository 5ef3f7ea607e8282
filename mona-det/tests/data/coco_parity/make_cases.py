#!/usr/bin/env python3
"""Generates the COCO AP parity cases of `mona-det/tests/coco_parity.rs`.

Each case is `CASE.gt.json` (COCO annotations), `CASE.res.json` (a results list) and
entries of `expected.json`: the iou type, the `maxDets` given to pycocotools
(`max_dets_given`), as it used them (`max_dets`, sorted by `evaluate()`) and the 12
statistics `COCOeval.summarize()` computed. Run from anywhere with pycocotools installed
(`pip install pycocotools numpy`, tested with pycocotools 2.0.11, numpy 2.4):

    python3 mona-det/tests/data/coco_parity/make_cases.py

The cases are small on purpose (they are committed) but each one exercises a path where
a re-implementation can drift from pycocotools: crowd regions, images with no ground truth
or no detection, tied scores, a category without ground truth, the three area ranges,
more detections than the caps, and mmdet's `maxDets = (100, 300, 1000)`.
"""

import contextlib
import io
import json
import os
import random

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

HERE = os.path.dirname(os.path.abspath(__file__))


def r2(x):
    return round(float(x), 2)


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def evaluate(gt_path, res_path, iou_type, max_dets):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(res_path)
        ev = COCOeval(gt, dt, iou_type)
        if max_dets is not None:
            ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats], list(ev.params.maxDets)


def categories(n):
    return [{"id": i, "name": f"c{i}", "supercategory": "x"} for i in range(1, n + 1)]


def jitter(rng, box, amount):
    x, y, w, h = box
    return [
        r2(max(0.0, x + rng.uniform(-amount, amount) * w)),
        r2(max(0.0, y + rng.uniform(-amount, amount) * h)),
        r2(max(1.0, w * (1 + rng.uniform(-amount, amount)))),
        r2(max(1.0, h * (1 + rng.uniform(-amount, amount)))),
    ]


def bbox_edge_cases():
    """Hand-written: crowd box, empty image, image without detections, ties, a category
    without ground truth, a `area` field that differs from w*h (pycocotools uses the field)."""
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in (1, 2, 3, 4)]
    anns = [
        # image 1: one small, one medium, one large object of class 1, one crowd region
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 100, 60, 50], "area": 3000, "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [300, 200, 200, 150], "area": 30000, "iscrowd": 0},
        {"id": 4, "image_id": 1, "category_id": 2, "bbox": [0, 300, 300, 170], "area": 40000, "iscrowd": 1},
        {"id": 5, "image_id": 1, "category_id": 2, "bbox": [20, 320, 40, 40], "area": 1600, "iscrowd": 0},
        # image 2: class 2 only; its `area` says small although the box is medium
        {"id": 6, "image_id": 2, "category_id": 2, "bbox": [50, 50, 40, 40], "area": 900, "iscrowd": 0},
        {"id": 7, "image_id": 2, "category_id": 1, "bbox": [400, 50, 100, 120], "area": 12000, "iscrowd": 0},
        # image 3: ground truth but no detection at all
        {"id": 8, "image_id": 3, "category_id": 1, "bbox": [5, 5, 50, 50], "area": 2500, "iscrowd": 0},
        # image 4: no annotations (detections there are false positives)
    ]
    res = [
        {"image_id": 1, "category_id": 1, "bbox": [11, 11, 19, 19], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [102, 98, 58, 52], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [290, 210, 190, 140], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 30], "score": 0.8},
        # detections inside the crowd region: matched to it, hence ignored
        {"image_id": 1, "category_id": 2, "bbox": [100, 330, 50, 50], "score": 0.7},
        {"image_id": 1, "category_id": 2, "bbox": [150, 350, 60, 60], "score": 0.95},
        {"image_id": 1, "category_id": 2, "bbox": [22, 318, 40, 42], "score": 0.6},
        {"image_id": 2, "category_id": 2, "bbox": [52, 49, 38, 41], "score": 0.5},
        {"image_id": 2, "category_id": 2, "bbox": [300, 300, 40, 40], "score": 0.5},
        {"image_id": 2, "category_id": 1, "bbox": [390, 60, 100, 100], "score": 0.4},
        # a category with no ground truth anywhere
        {"image_id": 2, "category_id": 3, "bbox": [10, 10, 10, 10], "score": 0.99},
        # the empty image
        {"image_id": 4, "category_id": 1, "bbox": [10, 10, 100, 100], "score": 0.85},
        {"image_id": 4, "category_id": 2, "bbox": [10, 10, 5, 5], "score": 0.3},
    ]
    gt = {"images": images, "annotations": anns, "categories": categories(3)}
    return gt, res


def bbox_random(seed, n_images, n_cats, max_objs, dets_per_obj, crowd_p, big_image=0):
    """Random ground truth over all three area ranges, detections as jittered copies plus
    clutter; scores rounded to one decimal so that many tie. `big_image` adds an image with
    that many detections so the caps of 100 / 300 bite."""
    rng = random.Random(seed)
    images, anns, res = [], [], []
    ann_id = 1
    for img_id in range(1, n_images + 1):
        W, H = rng.choice([(640, 480), (500, 375), (320, 240)])
        images.append({"id": img_id, "width": W, "height": H, "file_name": f"{img_id}.jpg"})
        n = 0 if img_id % 5 == 0 else rng.randint(1, max_objs)
        for _ in range(n):
            scale = rng.choice([8, 20, 40, 80, 160])
            w = r2(scale * rng.uniform(0.6, 1.6))
            h = r2(scale * rng.uniform(0.6, 1.6))
            x = r2(rng.uniform(0, max(1.0, W - w)))
            y = r2(rng.uniform(0, max(1.0, H - h)))
            cat = rng.randint(1, n_cats - 1)  # the last category has no ground truth
            crowd = 1 if rng.random() < crowd_p else 0
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat,
                         "bbox": [x, y, w, h], "area": r2(w * h), "iscrowd": crowd})
            ann_id += 1
            if img_id % 7 == 3:
                continue  # some images get no detections
            for _ in range(rng.randint(0, dets_per_obj)):
                res.append({"image_id": img_id, "category_id": cat,
                            "bbox": jitter(rng, [x, y, w, h], 0.25),
                            "score": round(rng.random(), 1)})
        if img_id % 7 != 3:
            for _ in range(rng.randint(0, 4)):
                w, h = r2(rng.uniform(4, 150)), r2(rng.uniform(4, 150))
                res.append({"image_id": img_id, "category_id": rng.randint(1, n_cats),
                            "bbox": [r2(rng.uniform(0, W - w)), r2(rng.uniform(0, H - h)), w, h],
                            "score": round(rng.random(), 2)})
    if big_image:
        img_id = n_images + 1
        images.append({"id": img_id, "width": 800, "height": 600, "file_name": "big.jpg"})
        boxes = []
        for _ in range(40):
            w, h = r2(rng.uniform(10, 200)), r2(rng.uniform(10, 200))
            box = [r2(rng.uniform(0, 800 - w)), r2(rng.uniform(0, 600 - h)), w, h]
            boxes.append(box)
            anns.append({"id": ann_id, "image_id": img_id, "category_id": 1, "bbox": box,
                         "area": r2(w * h), "iscrowd": 0})
            ann_id += 1
        for k in range(big_image):
            box = boxes[k % len(boxes)]
            res.append({"image_id": img_id, "category_id": 1,
                        "bbox": jitter(rng, box, 0.3 if k < 200 else 0.05),
                        "score": round(rng.uniform(0.5, 1.0) if k < 200 else rng.uniform(0, 0.5), 3)})
    gt = {"images": images, "annotations": anns, "categories": categories(n_cats)}
    return gt, res


def poly_of(rng, cx, cy, r, n):
    pts = []
    for k in range(n):
        a = 2 * np.pi * k / n + rng.uniform(-0.2, 0.2)
        rr = r * rng.uniform(0.7, 1.0)
        pts += [r2(cx + rr * np.cos(a)), r2(cy + rr * np.sin(a))]
    return pts


def to_json_rle(rle, compressed):
    counts = rle["counts"]
    if compressed:
        return {"size": [int(v) for v in rle["size"]], "counts": counts.decode("ascii")}
    return rle


def segm_cases(seed):
    """Polygons of one and several parts, crowd regions as uncompressed (`counts` a list)
    and compressed RLE, a non-crowd compressed RLE, an image without annotations; results as
    compressed RLE of perturbed masks, with tied scores and a category without ground truth."""
    rng = random.Random(seed)
    images, anns, res = [], [], []
    ann_id = 1
    for img_id in range(1, 7):
        W, H = rng.choice([(200, 150), (240, 180), (320, 240)])
        images.append({"id": img_id, "width": W, "height": H, "file_name": f"{img_id}.png"})
        if img_id == 5:
            # no annotations; one false positive
            m = np.zeros((H, W), np.uint8, order="F")
            m[5:20, 5:25] = 1
            res.append({"image_id": img_id, "category_id": 1, "score": 0.6,
                        "segmentation": to_json_rle(mask_utils.encode(np.asfortranarray(m)), True)})
            continue
        for k in range(rng.randint(1, 4) if img_id != 6 else 3):
            cat = rng.randint(1, 2)
            r = rng.choice([4, 9, 16, 30, 60]) * min(W, H) / 150
            cx, cy = rng.uniform(r, W - r), rng.uniform(r, H - r)
            kind = k % 4 if img_id != 6 else 3
            if kind == 0 or kind == 1:
                parts = [poly_of(rng, cx, cy, r, rng.randint(3, 9))]
                if kind == 1:  # a second part next to the first
                    parts.append(poly_of(rng, min(W - 2, cx + r * 1.5), cy, r * 0.5, 5))
                rles = mask_utils.frPyObjects(parts, H, W)
                rle = mask_utils.merge(rles)
                seg, crowd = parts, 0
            else:
                m = np.zeros((H, W), np.uint8)
                x0, y0 = int(max(0, cx - r)), int(max(0, cy - r))
                m[y0:int(cy + r), x0:int(cx + r)] = 1
                m[y0 + 1:y0 + 3, :] = 0  # a hole so the region is not a box
                rle = mask_utils.encode(np.asfortranarray(m))
                if kind == 2:  # crowd, uncompressed counts as in the COCO files
                    seg = {"size": [H, W], "counts": uncompressed_counts(m)}
                    crowd = 1
                else:  # compressed string, crowd on image 6, else not
                    seg = to_json_rle(rle, True)
                    crowd = 1 if img_id == 6 and k == 0 else 0
            area = float(mask_utils.area(rle))
            bbox = [r2(v) for v in mask_utils.toBbox(rle)]
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat,
                         "segmentation": seg, "area": area, "bbox": bbox, "iscrowd": crowd})
            ann_id += 1
            if img_id == 4:
                continue  # an image with ground truth but no detection
            gm = mask_utils.decode(rle)
            for d in range(rng.randint(1, 3)):
                dm = np.roll(gm, (rng.randint(-2, 2), rng.randint(-2, 2)), axis=(0, 1))
                if d == 2:
                    dm = np.zeros_like(gm)
                    dm[: H // 3, : W // 3] = 1
                res.append({"image_id": img_id, "category_id": cat if d < 2 else 3,
                            "score": round(rng.uniform(0.2, 1.0), 1),
                            "segmentation": to_json_rle(mask_utils.encode(np.asfortranarray(dm)), True)})
    gt = {"images": images, "annotations": anns, "categories": categories(3)}
    return gt, res


def uncompressed_counts(m):
    """Column-major run lengths starting with a run of zeros (COCO's `iscrowd` format)."""
    flat = np.asarray(m, np.uint8).flatten(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    return [int(c) for c in counts]


def main():
    cases = [
        ("bbox_edge", bbox_edge_cases(), "bbox", [(None, "pycocotools"), ((100, 300, 1000), "mmdet")]),
        ("bbox_random", bbox_random(1, 30, 5, 8, 3, 0.1), "bbox",
         # caps without 100, unsorted: pycocotools sorts them, and its stats[0] is -1
         [(None, "pycocotools"), ((100, 300, 1000), "mmdet"), ((50, 5, 20), "no_100")]),
        ("bbox_many", bbox_random(2, 6, 3, 5, 2, 0.0, big_image=450), "bbox", [(None, "pycocotools"), ((100, 300, 1000), "mmdet")]),
        ("segm_mixed", segm_cases(3), "segm", [(None, "pycocotools"), ((100, 300, 1000), "mmdet")]),
    ]
    expected = []
    for name, (gt, res), iou_type, settings in cases:
        gt_path = os.path.join(HERE, f"{name}.gt.json")
        res_path = os.path.join(HERE, f"{name}.res.json")
        dump(gt_path, gt)
        dump(res_path, res)
        for max_dets, label in settings:
            stats, used = evaluate(gt_path, res_path, iou_type, max_dets)
            given = list(max_dets) if max_dets is not None else used
            expected.append({"case": name, "iou_type": iou_type, "settings": label,
                             "max_dets_given": given, "max_dets": used, "stats": stats})
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
