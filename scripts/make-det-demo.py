#!/usr/bin/env python3
"""Builds data/det-demo (the detection demo) from the sample data of the PyPI package
`deepforest` (MIT): real NEON aerial RGB tiles with hand-annotated tree crowns (Pascal VOC XML).

    pip download deepforest==2.1.0 --no-deps -d /tmp/df
    unzip -q /tmp/df/deepforest-2.1.0-py3-none-any.whl -d /tmp/df/whl
    python3 scripts/make-det-demo.py /tmp/df/whl/deepforest/data data/det-demo

Needs Pillow (`pip install pillow`: crop, downscale with its default bicubic filter, JPEG
quality 90); the XML is read with the standard library. Each source image is optionally downscaled by an integer factor (boxes are
divided by the same factor), then cut into non-overlapping TILE x TILE tiles. A box is kept in
a tile when at least half of its area lies inside; it is clipped to the tile. Boxes are written
as integers (VOC style; mmdet reads `int(float(text))`). Tiles are assigned to trainval / test
by a fixed list so that every source site appears in both splits.
"""
import os
import sys
import xml.etree.ElementTree as ET

from PIL import Image

TILE = 200
# (source stem, downscale factor)
SOURCES = [
    ("OSBS_029", 1),
    ("SOAP_061", 1),
    ("2019_YELL_2_541000_4977000_image_crop", 2),
]
# tile ids (stem_row_col) that go to the test split; the rest is trainval
TEST = {"OSBS_029_1_1", "SOAP_061_0_1", "2019_YELL_2_541000_4977000_image_crop_1_2"}


def read_boxes(xml_path):
    root = ET.parse(xml_path).getroot()
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        out.append([float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])
    return out


def write_xml(path, filename, w, h, boxes):
    lines = ["<annotation>", "  <folder>VOC2007</folder>", f"  <filename>{filename}</filename>",
             f"  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>"]
    for b in boxes:
        lines += ["  <object>", "    <name>Tree</name>", "    <difficult>0</difficult>",
                  "    <bndbox>" + "".join(f"<{k}>{int(round(v))}</{k}>" for k, v in
                                           zip(("xmin", "ymin", "xmax", "ymax"), b)) + "</bndbox>",
                  "  </object>"]
    lines.append("</annotation>")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(src, dst):
    voc = os.path.join(dst, "VOC2007")
    for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
        os.makedirs(os.path.join(voc, d), exist_ok=True)
    splits = {"trainval": [], "test": []}
    for stem, factor in SOURCES:
        png = os.path.join(src, stem + ".png")
        img = Image.open(png).convert("RGB")
        w, h = img.width // factor, img.height // factor
        if factor != 1:
            img = img.resize((w, h), Image.BICUBIC)
        boxes = [[v / factor for v in b] for b in read_boxes(os.path.join(src, stem + ".xml"))]
        for r in range(h // TILE):
            for c in range(w // TILE):
                x0, y0 = c * TILE, r * TILE
                kept = []
                for b in boxes:
                    cb = [max(b[0], x0), max(b[1], y0), min(b[2], x0 + TILE), min(b[3], y0 + TILE)]
                    area = (b[2] - b[0]) * (b[3] - b[1])
                    inter = max(0.0, cb[2] - cb[0]) * max(0.0, cb[3] - cb[1])
                    if area > 0 and inter >= 0.5 * area and cb[2] - cb[0] >= 4 and cb[3] - cb[1] >= 4:
                        kept.append([cb[0] - x0, cb[1] - y0, cb[2] - x0, cb[3] - y0])
                if not kept:
                    continue
                tid = f"{stem}_{r}_{c}"
                img.crop((x0, y0, x0 + TILE, y0 + TILE)).save(
                    os.path.join(voc, "JPEGImages", tid + ".jpg"), quality=90)
                write_xml(os.path.join(voc, "Annotations", tid + ".xml"), tid + ".jpg", TILE, TILE, kept)
                splits["test" if tid in TEST else "trainval"].append((tid, len(kept)))
    for name, ids in splits.items():
        with open(os.path.join(voc, "ImageSets/Main", name + ".txt"), "w") as f:
            f.write("".join(t + "\n" for t, _ in ids))
        print(name, len(ids), "images", sum(n for _, n in ids), "boxes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
