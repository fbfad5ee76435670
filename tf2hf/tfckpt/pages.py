"""Giving a read tensor's memory-mapped pages back to the system once its array is gone.

A data shard stays mapped while the checkpoint is open; without this, every tensor read would
stay resident, and reading a whole model tensor by tensor would end with the model in memory.
"""

from __future__ import annotations

import mmap
import weakref

import numpy as np


def _drop_pages(mapped: mmap.mmap, offset: int, size: int) -> None:
    """Unmap the pages of ``offset:offset+size`` from this process; the file's data stays in
    the page cache and is mapped again on the next access, so views still alive (a neighbour
    sharing an edge page) read the same bytes."""
    start = offset - offset % mmap.PAGESIZE
    try:
        mapped.madvise(mmap.MADV_DONTNEED, start, offset + size - start)
    except (ValueError, OSError):
        pass  # the shard was closed meanwhile, or the system refuses: only memory is at stake


def drop_pages_after(array: np.ndarray, mapped: mmap.mmap, offset: int, size: int) -> None:
    """Drop the tensor's pages once ``array`` (and every view of it) is gone, or now when it
    is a copy. Measured on BERT-base + Adam slots, this keeps peak RSS at one tensor for the
    cost of a page fault per 4 KiB read (as fast as mapping each tensor on its own, and
    faster than ``pread`` into a fresh buffer, which copies every byte once more)."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return  # no madvise here (Windows): pages stay mapped until the shard is closed
    if array.flags.owndata:
        _drop_pages(mapped, offset, size)
        return
    # numpy points every view (reshape, .T, slices) at the array that wraps the buffer, not at
    # the array it was made from: that one lives exactly as long as some view of the tensor.
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    weakref.finalize(root, _drop_pages, mapped, offset, size).atexit = False
