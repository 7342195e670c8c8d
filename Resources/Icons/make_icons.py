"""Draw the extension's and the modules' 128x128 icons (a brain seen from above with a stroke lesion).

Run from the repository root: ``python Resources/Icons/make_icons.py``. It writes
``Resources/Icons/LesionSeg.png`` (extension), ``LesionSegInference/Resources/Icons/LesionSegInference.png``
and ``LesionSegCurriculum/Resources/Icons/LesionSegCurriculum.png``. Each icon is drawn at 4x its size
and downsampled with a Lanczos filter so that its edges are smooth. The PNGs are committed; this
script is not part of the Slicer build.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 128
SCALE = 4
CANVAS = SIZE * SCALE

OUTLINE = (52, 66, 84, 255)
TISSUE = (236, 224, 228, 255)
FOLD = (170, 150, 160, 255)
#: The "Stroke lesion" colour of lesionseg.labels (0.85, 0.20, 0.18) in 0..255.
LESION = (217, 51, 46, 255)
CONTOUR = (255, 214, 10, 255)
STEPS = ((120, 170, 220, 255), (70, 130, 200, 255), (30, 90, 170, 255))


def _px(value: float) -> int:
    """A fraction of the canvas side, in canvas pixels."""
    return round(value * CANVAS)


def _box(cx: float, cy: float, rx: float, ry: float) -> tuple[int, int, int, int]:
    return (_px(cx - rx), _px(cy - ry), _px(cx + rx), _px(cy + ry))


def _hemisphere(cx: float, cy: float, side: int, scale: float) -> list[tuple[int, int]]:
    """Outline of one hemisphere seen from above: flat along the midline, narrower at the front (top)."""
    points = []
    for step in range(61):
        angle = math.pi * (step / 60 - 0.5)  # -90 deg (front) .. +90 deg (back)
        y = math.sin(angle)
        half_width = 0.36 * scale * math.cos(angle) * (0.86 + 0.14 * (y + 1) / 2)
        points.append((_px(cx + side * half_width), _px(cy + 0.45 * scale * y)))
    return points


def _draw_brain(image: Image.Image, cx: float, cy: float, scale: float) -> None:
    """Two hemispheres with a few folds, centred on (cx, cy) in canvas fractions."""
    width = max(2, _px(0.024 * scale))
    gap = 0.014 * scale
    for side in (-1, 1):
        mx = cx + side * gap
        outline = _hemisphere(mx, cy, side, scale)
        # Folds are drawn on their own layer and pasted through the hemisphere's shape, so they stay inside.
        folds = Image.new("RGBA", image.size, TISSUE)
        fold_draw = ImageDraw.Draw(folds)
        for dy in (-0.26, -0.08, 0.1, 0.28):
            box = _box(mx + side * 0.2 * scale, cy + dy * scale, 0.15 * scale, 0.06 * scale)
            fold_draw.arc(box, 200, 340, fill=FOLD, width=max(2, width // 2))
        mask = Image.new("L", image.size, 0)
        ImageDraw.Draw(mask).polygon(outline, fill=255)
        image.paste(folds, (0, 0), mask)
        ImageDraw.Draw(image).polygon(outline, outline=OUTLINE, width=width)


def _draw_lesion(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, contour: bool = False) -> None:
    """An irregular lesion made of three overlapping discs; optionally a contour around it."""
    blobs = ((cx, cy, r), (cx + 0.55 * r, cy - 0.45 * r, 0.7 * r), (cx - 0.35 * r, cy + 0.6 * r, 0.65 * r))
    if contour:
        pad = 0.35 * r
        for bx, by, br in blobs:
            draw.ellipse(_box(bx, by, br + pad, br + pad), fill=CONTOUR)
    for bx, by, br in blobs:
        draw.ellipse(_box(bx, by, br, br), fill=LESION)


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.resize((SIZE, SIZE), Image.LANCZOS).save(path, format="PNG", optimize=True)
    print(f"wrote {path}")


def extension_icon() -> Image.Image:
    """Brain with a lesion in the left hemisphere (viewer's right)."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    _draw_brain(image, 0.5, 0.5, 1.0)
    draw = ImageDraw.Draw(image)
    _draw_lesion(draw, 0.66, 0.4, 0.075)
    return image


def inference_icon() -> Image.Image:
    """Brain with a lesion outlined (a segmentation) under a magnifying glass."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    _draw_brain(image, 0.45, 0.47, 0.9)
    draw = ImageDraw.Draw(image)
    _draw_lesion(draw, 0.6, 0.4, 0.07, contour=True)
    ring = 0.16
    draw.ellipse(_box(0.6, 0.41, ring, ring), outline=OUTLINE, width=_px(0.035))
    draw.line((_px(0.6 + 0.7 * ring), _px(0.41 + 0.7 * ring), _px(0.93), _px(0.93)), fill=OUTLINE,
              width=_px(0.07))
    return image


def curriculum_icon() -> Image.Image:
    """A small brain with a lesion above three steps that rise from easy to hard."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    _draw_brain(image, 0.3, 0.3, 0.55)
    draw = ImageDraw.Draw(image)
    _draw_lesion(draw, 0.38, 0.25, 0.045)
    base = 0.95
    for index, colour in enumerate(STEPS):
        left = 0.08 + index * 0.29
        top = base - 0.14 * (index + 1)
        draw.rounded_rectangle((_px(left), _px(top), _px(left + 0.26), _px(base)), radius=_px(0.03),
                               fill=colour, outline=OUTLINE, width=_px(0.015))
    return image


def main() -> None:
    """Write the three icons relative to the repository root (two levels above this file)."""
    root = Path(__file__).resolve().parents[2]
    _save(extension_icon(), root / "Resources" / "Icons" / "LesionSeg.png")
    _save(inference_icon(), root / "LesionSegInference" / "Resources" / "Icons" / "LesionSegInference.png")
    _save(curriculum_icon(), root / "LesionSegCurriculum" / "Resources" / "Icons" / "LesionSegCurriculum.png")


if __name__ == "__main__":
    main()
