"""Draw the README's picture: one test photograph, its vessel probabilities and the errors.

    python evaluate.py --config weights/sa_unetv2_drive.yaml --weights weights/sa_unetv2_drive.keras \\
        --data-root DIR --out runs/eval/drive
    python tools/readme_figure.py --eval runs/eval/drive --data-root DIR --image 01_test

Writes docs/images/drive_example.jpg: the photograph, the probability map and the overlay that
evaluate.py drew (true positives green, false positives red, false negatives blue), side by side
at a reduced size, with a caption strip.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.io import read_image  # noqa: E402
from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402
from utils.io import write_image  # noqa: E402


def panel(array: np.ndarray, width: int) -> Image.Image:
    """(H, W) or (H, W, 3) uint8 -> an RGB picture `width` pixels wide."""
    picture = Image.fromarray(array).convert("RGB")
    height = round(picture.height * width / picture.width)
    return picture.resize((width, height), Image.Resampling.LANCZOS)


def compose(panels: list[Image.Image], captions: list[str], gap: int = 6) -> np.ndarray:
    """Panels side by side on white, each with its caption below; (H, W, 3) uint8."""
    width = sum(p.width for p in panels) + gap * (len(panels) + 1)
    height = max(p.height for p in panels) + 2 * gap + 18
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for picture, caption in zip(panels, captions, strict=True):
        canvas.paste(picture, (x, gap))
        draw.text((x, gap + picture.height + 3), caption, fill="black")
        x += picture.width + gap
    return np.asarray(canvas)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval", required=True, help="an evaluate.py output folder (with images/)")
    parser.add_argument("--data-root", required=True, help="the folder holding DRIVE/")
    parser.add_argument("--image", default="01_test", help="DRIVE test image stem (01_test)")
    parser.add_argument("--width", type=int, default=300, help="width of each panel in pixels")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "drive_example.jpg"))
    args = parser.parse_args(argv)
    images = Path(args.eval) / "images"
    photo_path = Path(args.data_root) / "DRIVE" / "test" / "images" / f"{args.image}.tif"
    needed = [photo_path, images / f"{args.image}_prob.png", images / f"{args.image}_overlay.png"]
    for path in needed:
        if not path.is_file():
            raise UserError(f"{path} does not exist; run evaluate.py as the docstring shows first")
    photo, prob, overlay = (read_image(path) for path in needed)
    figure = compose(
        [panel(photo, args.width), panel(prob, args.width), panel(overlay, args.width)],
        [
            f"DRIVE {args.image}",
            "vessel probability",
            "threshold 0.5: TP green, FP red, FN blue",
        ],
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_image(args.out, figure)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
