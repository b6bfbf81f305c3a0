"""Parquet files under DATASET_DIR: atomic writes, checksums, a per-process cache of loads."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import pandas as pd
from django.conf import settings


def dataset_path(relative: str) -> Path:
    """The file of a dataset; refuses a path that would leave DATASET_DIR."""
    root = Path(settings.DATASET_DIR).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"dataset path {relative!r} is outside DATASET_DIR")
    return path


def write_parquet(frame: pd.DataFrame, relative: str) -> str:
    """Write ``frame`` to DATASET_DIR/relative atomically; return its sha256.

    The file appears complete or not at all: a crash mid-write leaves only a temp file that
    no Dataset row points to.
    """
    target = dataset_path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False, compression="zstd")
        checksum = file_sha256(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return checksum


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _FrameCache:
    """Small LRU of loaded frames keyed by checksum, so a worker reads each dataset once."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: str, loader):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = loader()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


frame_cache = _FrameCache()
