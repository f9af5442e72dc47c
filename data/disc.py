"""The optic disc: its labels (DRIVE masks, HRF experts' centres) and `locate_disc`, which finds it.

Labels (`DiscLabel`: centre (x, y) and diameter in pixels of the full-size photograph):

- `read_drive_discs`: `DISC/DRIVE/NN_test_gt.tif`, `NN_training_gt.tif`, one binary mask per
  DRIVE photograph; the centre is the mask's centroid, the diameter that of the circle of the
  same area. Keyed by the photograph's name as `data.readers.read_drive` names it ("01_test").
- `read_hrf_discs`: `DISC/HRF/optic_disk_centers_expert_A.csv` or `..._B.csv`, keyed by HRF's
  stem ("01_dr"; expert B's "01dr" is written that way). A row whose own point of vessel
  emergence lies outside its disc (further from the centre than the radius) is kept but marked
  `suspect`: a mistyped coordinate (expert A's 02_dr and expert B's 02_g centre y). Every other
  row has it within 0.55 radii. Suspect rows are left out of error statistics.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.io import read_mask
from utils.errors import UserError

DISC_FOLDER = "DISC"
HRF_EXPERTS = ("A", "B")
HRF_COLUMNS = ("image", "Pap. Center x", "Pap. Center y", "vessel orig. x", "vessel orig. y",
               "disk diameter")  # fmt: skip
DRIVE_DISC_NAME = re.compile(r"(\d+_(?:test|training))_gt$")
HRF_STEM = re.compile(r"(\d+)_?(dr|g|h)$", re.IGNORECASE)


@dataclass(frozen=True)
class DiscLabel:
    """One labelled optic disc, in pixels of the full-size photograph: centre (x, y), diameter;
    `suspect`: a row that contradicts itself (mistyped), left out of error statistics."""

    centre_xy: tuple[float, float]
    diameter_px: float
    suspect: bool = False

    @property
    def radius_px(self) -> float:
        return self.diameter_px / 2.0


def disc_folder(root: str | Path) -> Path:
    """The `DISC` folder: `root/DISC` or `root` itself; a UserError where neither holds DRIVE/
    or HRF/."""
    root = Path(root)
    for folder in (root / DISC_FOLDER, root):
        if (folder / "DRIVE").is_dir() or (folder / "HRF").is_dir():
            return folder
    raise UserError(
        f"{root} holds no optic-disc labels; expected {root / DISC_FOLDER} with DRIVE/ and HRF/"
    )


def mask_disc(mask: np.ndarray) -> DiscLabel:
    """The disc of a bool (H, W) mask: centroid (x, y) and equal-area diameter (px)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("the disc mask is empty")
    return DiscLabel(
        (float(cols.mean()), float(rows.mean())), float(2.0 * np.sqrt(rows.size / np.pi))
    )


def read_drive_discs(root: str | Path) -> dict[str, DiscLabel]:
    """{DRIVE photograph name ("01_test" ... "40_training"): its disc} from `DISC/DRIVE` under
    `root` (the data root or the DISC folder)."""
    folder = disc_folder(root) / "DRIVE"
    labels = {}
    for path in sorted(folder.glob("*_gt.tif")):
        match = DRIVE_DISC_NAME.match(path.stem)
        if match:
            labels[match.group(1)] = mask_disc(read_mask(path))
    if not labels:
        raise UserError(f"folder {folder} holds no DRIVE disc masks; expected NN_test_gt.tif files")
    return labels


def hrf_stem(name: str) -> str:
    """HRF's photograph stem in one spelling: "01dr" and "01_dr" -> "01_dr"."""
    match = HRF_STEM.match(name.strip())
    if not match:
        raise ValueError(f"'{name}' is not an HRF photograph stem such as 01_dr, 07_g or 15_h")
    return f"{int(match.group(1)):02d}_{match.group(2).lower()}"


def read_hrf_discs(root: str | Path, expert: str = "A") -> dict[str, DiscLabel]:
    """{HRF stem ("01_dr" ... "15_h"): its disc} by `expert` "A" or "B", from
    `DISC/HRF/optic_disk_centers_expert_<expert>.csv` under `root` (data root or DISC folder);
    rows whose vessel origin lies outside their own disc are `suspect` (module docstring)."""
    if expert not in HRF_EXPERTS:
        raise ValueError(f"expert must be one of {HRF_EXPERTS}, got '{expert}'")
    path = disc_folder(root) / "HRF" / f"optic_disk_centers_expert_{expert}.csv"
    if not path.is_file():
        raise UserError(f"{path} is missing; expected expert {expert}'s HRF disc table there")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or any(column not in rows[0] for column in HRF_COLUMNS):
        raise UserError(f"{path} lacks the columns {', '.join(HRF_COLUMNS)}; expected that header")
    labels = {}
    for row in rows:
        cx, cy, vx, vy, diameter = (float(row[c]) for c in HRF_COLUMNS[1:])
        origin_outside = np.hypot(vx - cx, vy - cy) > diameter / 2.0
        labels[hrf_stem(row["image"])] = DiscLabel((cx, cy), diameter, bool(origin_outside))
    return labels
