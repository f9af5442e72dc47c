"""One way to list and read files, whether they sit in a folder, a zip or tar archives.

`MergedTree` joins several archives or folders into one virtual folder (HRF's
separate per-group archives: `healthy.zip`, `glaucoma.zip`, ...).

A tree maps relative folder names ("training/images") to file names and
reads a file's bytes; `where(rel)` gives the name to show in messages
(`/data/DRIVE.zip:DRIVE/training/images/21_training.tif`).
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from utils.errors import UserError


class DirTree:
    """Files under a folder."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def is_dir(self, rel: str) -> bool:
        return (self.root / rel).is_dir()

    def listdir(self, rel: str) -> list[str]:
        folder = self.root / rel
        return sorted(
            p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
        )

    def read(self, rel: str) -> bytes:
        path = self.root / rel
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UserError(
                f"{path} could not be read ({exc.strerror or exc}); expected a readable file"
            ) from exc

    def where(self, rel: str) -> str:
        return str(self.root / rel) if rel else str(self.root)


class ZipTree:
    """Files inside a zip archive, below `prefix` (e.g. "DRIVE/")."""

    def __init__(self, path: Path, prefix: str = ""):
        self.path = Path(path)
        self.prefix = prefix
        self._zip = open_zip(self.path)
        self._names = [n for n in self._zip.namelist() if not n.endswith("/")]

    def _start(self, rel: str) -> str:
        """The member-name prefix of folder `rel` ("" is the tree's top)."""
        rel = rel.strip("/")
        return f"{self.prefix}{rel}/" if rel else self.prefix

    def is_dir(self, rel: str) -> bool:
        start = self._start(rel)
        return any(n.startswith(start) for n in self._names)

    def listdir(self, rel: str) -> list[str]:
        start = self._start(rel)
        names = (n[len(start) :] for n in self._names if n.startswith(start))
        return sorted(n for n in names if n and "/" not in n and not n.startswith("."))

    def read(self, rel: str) -> bytes:
        try:
            return self._zip.read(self.prefix + rel)
        except (zipfile.BadZipFile, OSError, KeyError, EOFError) as exc:
            raise UserError(
                f"{self.where(rel)} could not be read from the zip ({exc}); expected an intact archive"
            ) from exc

    def where(self, rel: str) -> str:
        return f"{self.path}:{self.prefix}{rel}"


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(
            f"{path} could not be opened as a zip archive ({exc}); expected an intact .zip file"
        ) from exc


def zip_prefix(path: Path, marker: str) -> str | None:
    """The folder inside the zip that holds `marker` (e.g. "training/images/"), or None."""
    names = open_zip(path).namelist()
    best = None
    for n in names:
        i = n.find(marker)
        if i >= 0 and (i == 0 or n[i - 1] == "/"):
            prefix = n[:i]
            if best is None or len(prefix) < len(best):
                best = prefix
    return best


class TarTree:
    """Files in several tar archives, each seen as one folder named after the archive.

    STARE's official archives (`stare-images.tar`, `labels-ah.tar`,
    `labels-vk.tar`) hold their files at the top level; folders inside a tar
    are ignored (only base names count).
    """

    def __init__(self, tars: dict[str, Path]):
        self.tars = dict(tars)
        self._members: dict[str, dict[str, tarfile.TarInfo]] = {}
        self._open: dict[str, tarfile.TarFile] = {}
        for folder, path in self.tars.items():
            try:
                tf = tarfile.open(path)
                members = {m.name.rsplit("/", 1)[-1]: m for m in tf.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise UserError(
                    f"{path} could not be opened as a tar archive ({exc}); expected an intact .tar file"
                ) from exc
            self._open[folder] = tf
            self._members[folder] = members

    def is_dir(self, rel: str) -> bool:
        return rel.strip("/") in self._members

    def listdir(self, rel: str) -> list[str]:
        return sorted(n for n in self._members[rel.strip("/")] if not n.startswith("."))

    def read(self, rel: str) -> bytes:
        folder, name = rel.split("/", 1)
        try:
            f = self._open[folder].extractfile(self._members[folder][name])
            return f.read()
        except (tarfile.TarError, OSError, EOFError, KeyError) as exc:
            raise UserError(
                f"{self.where(rel)} could not be read from the tar ({exc}); expected an intact archive"
            ) from exc

    def where(self, rel: str) -> str:
        folder, _, name = rel.partition("/")
        path = self.tars.get(folder)
        return f"{path}:{name}" if path else rel


class MergedTree:
    """Virtual folders, each the union of the files (by base name) of several zip archives or
    folders; inside a zip, folders are ignored (only base names count)."""

    def __init__(self, folders: dict[str, list[Path]]):
        self._files: dict[str, dict[str, tuple[Path, str]]] = {}
        self._zips: dict[Path, zipfile.ZipFile] = {}
        for folder, sources in folders.items():
            files: dict[str, tuple[Path, str]] = {}
            for source in map(Path, sources):
                if source.is_dir():
                    members = [p.name for p in sorted(source.iterdir()) if p.is_file()]
                else:
                    self._zips[source] = open_zip(source)
                    members = [n for n in self._zips[source].namelist() if not n.endswith("/")]
                for member in members:
                    base = member.rsplit("/", 1)[-1]
                    if base and not base.startswith("."):
                        files[base] = (source, member)
            self._files[folder.strip("/")] = files

    def is_dir(self, rel: str) -> bool:
        return rel.strip("/") in self._files

    def listdir(self, rel: str) -> list[str]:
        return sorted(self._files[rel.strip("/")])

    def read(self, rel: str) -> bytes:
        folder, name = rel.split("/", 1)
        source, member = self._files[folder][name]
        if source in self._zips:
            try:
                return self._zips[source].read(member)
            except (zipfile.BadZipFile, OSError, KeyError, EOFError) as exc:
                raise UserError(
                    f"{self.where(rel)} could not be read from the zip ({exc}); expected an intact archive"
                ) from exc
        return DirTree(source).read(member)

    def where(self, rel: str) -> str:
        folder, _, name = rel.partition("/")
        source, member = self._files.get(folder, {}).get(name, (None, name))
        if source is None:
            return rel
        return f"{source}:{member}" if source in self._zips else str(source / member)
