#!/usr/bin/env python3
"""Draws the sample digits in samples/ (for `lenet5 predict` and its README example).

Each digit is a few pen strokes defined below (straight segments and ellipse arcs in a unit box), rasterised
with anti-aliased round pens in varied styles: dark ink on white, white on black, blue ink on cream paper,
small and off-centre on a large canvas, and dark ink on a transparent background. Nothing comes from MNIST.
Pure standard library (PNG written by hand), so it runs anywhere: python3 scripts/draw_sample_digits.py
"""
import math
import os
import random
import struct
import zlib


def ellipse(cx, cy, rx, ry, a0=0, a1=360, n=40):
    return [(cx + rx * math.cos(math.radians(a0 + (a1 - a0) * i / n)), cy + ry * math.sin(math.radians(a0 + (a1 - a0) * i / n))) for i in range(n + 1)]


# Strokes per digit, x right and y down in [0, 1].
DIGITS = {
    0: [ellipse(0.5, 0.5, 0.32, 0.45)],
    1: [[(0.3, 0.22), (0.55, 0.04), (0.55, 0.96)]],
    2: [ellipse(0.5, 0.3, 0.3, 0.24, 190, 370, 20) + [(0.75, 0.45), (0.18, 0.95), (0.85, 0.95)]],
    3: [ellipse(0.48, 0.27, 0.28, 0.22, 200, 450, 24), ellipse(0.48, 0.71, 0.32, 0.25, 270, 520, 24)],
    4: [[(0.68, 0.96), (0.68, 0.04), (0.12, 0.68), (0.9, 0.68)]],
    5: [[(0.82, 0.05), (0.3, 0.05), (0.24, 0.45)] + ellipse(0.5, 0.66, 0.32, 0.29, 230, 500, 24)],
    6: [[(0.72, 0.06), (0.45, 0.15), (0.24, 0.45)] + ellipse(0.5, 0.7, 0.28, 0.26, 180, 540, 30)],
    7: [[(0.14, 0.06), (0.86, 0.06), (0.42, 0.96)]],
    8: [ellipse(0.5, 0.27, 0.24, 0.22), ellipse(0.5, 0.72, 0.3, 0.24)],
    9: [ellipse(0.5, 0.3, 0.28, 0.25), [(0.78, 0.3), (0.7, 0.96)]],
}


def seg_dist(px, py, a, b):
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy or 1)))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def coverage(digit, w, h, box, pen, slant):
    """Ink coverage in [0, 1] per pixel for `digit` drawn in box = (x, y, width, height)."""
    bx, by, bw, bh = box
    segs = []
    for stroke in DIGITS[digit]:
        pts = [(bx + (x + slant * (0.5 - y)) * bw, by + y * bh) for x, y in stroke]
        segs += list(zip(pts, pts[1:]))
    out = []
    for y in range(h):
        row = []
        for x in range(w):
            d = min(seg_dist(x + 0.5, y + 0.5, a, b) for a, b in segs)
            row.append(max(0.0, min(1.0, pen / 2 - d + 0.5)))
        out.append(row)
    return out


def write_png(path, w, h, pixels, channels):
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)
    color_type = {3: 2, 4: 6}[channels]
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def mix(ink, paper, c):
    return tuple(round(p + (i - p) * c) for i, p in zip(ink, paper))


STYLES = {
    # name: (canvas w, h, box, pen width, ink, paper, noise)
    "black-on-white": (120, 160, (25, 20, 70, 120), 12, (20, 20, 20), (255, 255, 255), 0),
    "white-on-black": (90, 90, (25, 8, 40, 74), 8, (250, 250, 250), (0, 0, 0), 0),
    "blue-on-paper": (140, 140, (40, 15, 60, 110), 10, (30, 50, 160), (245, 235, 205), 12),
    "small-off-centre": (200, 150, (20, 15, 30, 45), 5, (0, 0, 0), (255, 255, 255), 0),
}


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples")
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(5)
    names = list(STYLES) + ["transparent"]
    for digit in range(10):
        style = names[digit % len(names)]
        slant = rng.uniform(-0.15, 0.2)
        path = os.path.join(out_dir, f"{digit}-{style}.png")
        if style == "transparent":
            w, h = 100, 100
            cov = coverage(digit, w, h, (28, 10, 45, 80), 9, slant)
            # RGB is black everywhere; only alpha draws the digit (a decoder that drops alpha sees nothing).
            pixels = [[(0, 0, 0, round(255 * c)) for c in row] for row in cov]
            write_png(path, w, h, pixels, 4)
        else:
            w, h, box, pen, ink, paper, noise = STYLES[style]
            cov = coverage(digit, w, h, box, pen, slant)
            pixels = [[tuple(max(0, min(255, v + rng.randint(-noise, noise))) for v in mix(ink, paper, c)) for c in row] for row in cov]
            write_png(path, w, h, pixels, 3)
        print(path)


if __name__ == "__main__":
    main()
