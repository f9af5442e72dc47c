"""Training on random crops of the augmented photographs (`train.crop_size`).

Whole-photograph training, the paper's, pads every image of a batch to the
largest photograph. When the photographs differ in size, as in the fundus
set (DRIVE's 565 x 584 beside HRF's 967 x 645 and CHASE_DB1's 999 x 960),
most of a small photograph's batch would be padding, and the float copy of
the whole set would not fit in memory. `CropBatches` instead keeps the
augmented set as uint8 and cuts one `crop x crop` square from each training
image per epoch, at a position drawn uniformly over that image's own extent
(a photograph smaller than the crop keeps its zero padding, as in whole-image
training). An epoch still visits every training index once, in a shuffled
order. The validation images stay whole and uint8 too (`ImageBatches`),
converted a batch at a time.

With `camera` (`train.camera_augment`), that share of the crops also goes
through a random mix of camera changes (`data.camera.random_camera`): darker,
flatter, another gamma, less colour, blur, sensor noise, JPEG compression; with
`camera_changes` "clinic" (`train.camera_changes`) also a vignette, an illumination gradient and
another white balance (`data.camera.CAMERA_MIXES`).

With `zoom` (`train.scale_augment`, e.g. (0.7, 1.4)), each crop is cut from a square window of
side `crop / z` instead, z drawn log-uniformly from the range, and resized to `crop x crop`:
z > 1 shows the photograph larger, as a camera with a wider field of view in pixels would.
Training then sees each camera at a spread of FOV diameters rather than at its one diameter
(prediction leaves any diameter inside the band as it is), and the enlarged crops are softer, as
some cameras' are. The image is resized bilinearly, not with the Lanczos filter of
`data.scale.resize_sample`, since every crop is resized at every step; the label is resized the
same way and thresholded at one half, so its edges stay where the image's are (nearest neighbour
would shift them by up to half a window pixel). An artery/vein class map (`data.av`) is resized
the same way for its vessel pixels, each of which then takes the class most present around it.

With `margin` (`train.crop_margin`), a window may reach up to that many pixels (of the crop,
scaled with a zoomed window) past each side of its image, the part outside being zeros: crops
then hold more padding and background, as whole padded photographs do, which moves the
threshold at which the network's F1 peaks back towards whole-image training's
(docs/cameras-experiments.md, "Why the threshold is folded in").

The order, the positions, the zooms and the camera changes come from `np.random.default_rng([seed, epoch,
...])`, so a run resumed at epoch k draws what an uninterrupted run would
have drawn: the dataset counts epochs from `initial_epoch` and Keras calls
`on_epoch_end` after each.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from data.io import to_unit_float


class CropBatches(keras.utils.PyDataset):
    """Batches of random crops: x float32 (B, crop, crop, 3) in [0, 1], y float32 (B, crop, crop, 1).

    x: uint8 (N, H, W, 3) and y: uint8 (N, H, W, 1) zero-padded images (y of 0 and 1, or an
    artery/vein class map of `data.av`, which comes out as class values); extents: (N, 2) int, each
    image's own (h, w) inside the padding. Every batch is full: the last one wraps around to the
    start of the epoch's order (data-parallel training splits each batch evenly). camera: the
    share of crops passed through `data.camera.random_camera` (0: none, nothing drawn). zoom:
    (low, high) zoom factors, each crop's drawn log-uniformly between them (None: none, nothing
    drawn). margin: how far (px of the crop) a window may reach past each side of its image.
    camera_changes: the mix of `data.camera.CAMERA_MIXES` the camera changes come from.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        extents: np.ndarray,
        crop: int,
        batch_size: int,
        seed: int,
        initial_epoch: int = 0,
        shuffle: bool = True,
        camera: float = 0.0,
        zoom: tuple[float, float] | None = None,
        margin: int = 0,
        camera_changes: str = "basic",
    ):
        super().__init__()
        if len(x) == 0:
            raise ValueError("CropBatches needs at least one image")
        self.x, self.y = x, y
        self.extents = np.asarray(extents, dtype=np.int64).reshape(len(x), 2)
        self.crop, self.batch_size = int(crop), int(batch_size)
        self.seed, self.epoch, self.shuffle = int(seed), int(initial_epoch), bool(shuffle)
        self.camera = float(camera)
        self.zoom = None if zoom is None else (float(zoom[0]), float(zoom[1]))
        self.margin = int(margin)
        self.camera_changes = camera_changes
        self._order_epoch, self._order = None, None

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def order(self) -> np.ndarray:
        """This epoch's order of the training indices."""
        if self._order_epoch != self.epoch:
            n = len(self.x)
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order = rng.permutation(n) if self.shuffle else np.arange(n)
            self._order_epoch = self.epoch
        return self._order

    def sides(self, index: int) -> np.ndarray:
        """The side (px) of the square window each crop of batch `index` is cut from (B,): the crop's
        own, or with `zoom` crop / z."""
        if self.zoom is None:
            return np.full(self.batch_size, self.crop, np.int64)
        rng = np.random.default_rng([self.seed, self.epoch, index, 2])
        zooms = np.exp(rng.uniform(*np.log(self.zoom), size=self.batch_size))
        return np.maximum(np.rint(self.crop / zooms), 1).astype(np.int64)

    def windows(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image indices (B,) of batch `index` and their windows' top-left corners (B, 2)."""
        order = self.order()
        picks = order[
            np.arange(index * self.batch_size, (index + 1) * self.batch_size) % len(order)
        ]
        sides = self.sides(index)
        margins = np.rint(self.margin * sides / self.crop).astype(np.int64)[:, None]
        room = np.maximum(self.extents[picks] - sides[:, None], 0) + 2 * margins
        rng = np.random.default_rng([self.seed, self.epoch, index])
        corners = np.floor(rng.random((len(picks), 2)) * (room + 1)).astype(np.int64) - margins
        return picks, corners

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picks, corners = self.windows(index)
        c = self.crop
        xb = np.zeros((len(picks), c, c, self.x.shape[-1]), np.uint8)
        yb = np.zeros((len(picks), c, c, self.y.shape[-1]), np.uint8)
        for k, (i, (top, left), side) in enumerate(
            zip(picks, corners, self.sides(index), strict=True)
        ):
            window_x = _window(self.x[i], top, left, side)
            window_y = _window(self.y[i], top, left, side)
            if side != c:
                window_x, window_y = _resized(window_x, window_y, side, c)
            xb[k, : window_x.shape[0], : window_x.shape[1]] = window_x
            yb[k, : window_y.shape[0], : window_y.shape[1]] = window_y
        if self.camera > 0:
            self.change_cameras(xb, index)
        return to_unit_float(xb), yb.astype(np.float32)

    def change_cameras(self, xb: np.ndarray, index: int) -> None:
        """Pass about `camera` of batch `index`'s crops through a random camera, in place."""
        from data.camera import CAMERA_MIXES, random_camera

        changes = CAMERA_MIXES[self.camera_changes]
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        for k in range(len(xb)):
            if rng.random() < self.camera:
                xb[k] = random_camera(xb[k], rng, changes)[0]

    def on_epoch_end(self) -> None:
        self.epoch += 1


def _window(array: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """The part of the side x side window at (top, left) that lies on `array` (H, W, C), with zeros
    in front where the window starts above or left of it: a window inside the array is a view, as
    before; one reaching past the bottom or right comes back short (the caller zero-fills)."""
    if top >= 0 and left >= 0:
        return array[top : top + side, left : left + side]
    out = np.zeros((side, side, array.shape[-1]), array.dtype)
    part = array[max(top, 0) : max(top + side, 0), max(left, 0) : max(left + side, 0)]
    dy, dx = max(-top, 0), max(-left, 0)
    out[dy : dy + part.shape[0], dx : dx + part.shape[1]] = part
    return out


def _resized(x: np.ndarray, y: np.ndarray, side: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A window of up to side x side px (zero-padded to it where the image ends) resized to size x
    size: x uint8 (h, w, C) bilinear; y uint8 (h, w, 1), its vessel pixels (y != 0) bilinear and
    thresholded at 0.5. A class map (values above 1: data.av) keeps its classes: each vessel pixel
    of the result takes the class whose own bilinear share is largest there (ties to the lower)."""
    from PIL import Image

    padded_x = np.zeros((side, side, x.shape[-1]), np.uint8)
    padded_x[: x.shape[0], : x.shape[1]] = x
    image = Image.fromarray(padded_x).resize((size, size), Image.BILINEAR)
    vessel = _resized_share(y[..., 0] != 0, side, size) >= 128
    if y.max(initial=0) <= 1:
        return np.asarray(image), vessel.astype(np.uint8)[..., None]
    values = np.unique(y[y != 0])
    shares = np.stack([_resized_share(y[..., 0] == v, side, size) for v in values])
    classes = np.where(vessel, values[np.argmax(shares, axis=0)], 0).astype(np.uint8)
    return np.asarray(image), classes[..., None]


def _resized_share(pixels: np.ndarray, side: int, size: int) -> np.ndarray:
    """A bool map (h, w) of up to side x side px, zero-padded to it, resized bilinearly to size x
    size: uint8 (size, size), 255 where every pixel around was True."""
    from PIL import Image

    padded = np.zeros((side, side), np.uint8)
    padded[: pixels.shape[0], : pixels.shape[1]] = pixels.astype(np.uint8) * 255
    return np.asarray(Image.fromarray(padded).resize((size, size), Image.BILINEAR))


class ImageBatches(keras.utils.PyDataset):
    """Whole images in order, converted a batch at a time: x float32 (B, H, W, 3) in [0, 1] and
    y float32 (B, H, W, 1) from uint8 x (N, H, W, 3) and y (N, H, W, 1); the last batch may be
    short. Holds the uint8 arrays only (a float copy of the fundus validation set is 1.6 GB)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, int(batch_size)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return to_unit_float(self.x[part]), self.y[part].astype(np.float32)
