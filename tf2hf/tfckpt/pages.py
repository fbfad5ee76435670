"""Which pages of a memory-mapped shard are read from disk, and giving them back once used.

A data shard stays mapped while the checkpoint is open; without :func:`drop_pages_after`, every
tensor read would stay resident, and reading a whole model tensor by tensor would end with the
model in memory. Without :func:`read_only_what_is_asked`, the kernel's read-ahead around each
page fault (and around ``read`` of the same file) would pull in the optimizer slots that lie
between the weights, two thirds of a fine-tuned checkpoint's bytes, which are never used.
"""

from __future__ import annotations

import mmap
import os
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


def read_only_what_is_asked(fd: int, mapped: mmap.mmap) -> None:
    """Turn off read-ahead for this shard: ``MADV_RANDOM`` on the mapping (page faults read
    only their page) and ``POSIX_FADV_RANDOM`` on the open file (which the mapping shares).
    :func:`read_ahead` then asks for exactly the range of each tensor as it is read."""
    try:
        if hasattr(mmap, "MADV_RANDOM"):
            mapped.madvise(mmap.MADV_RANDOM)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    except OSError:
        pass  # advice only: a file system that refuses it still reads correctly


def read_ahead(mapped: mmap.mmap, offset: int, size: int) -> None:
    """Ask the kernel to read ``offset:offset+size`` (page-aligned outwards) in one go, before
    its bytes are touched: with read-ahead off, the crc32c's walk over a cold tensor would
    otherwise fault one 4 KiB page at a time. Only the pages at its two ends can hold bytes of
    a neighbour."""
    if not hasattr(mmap, "MADV_WILLNEED"):
        return
    start = offset - offset % mmap.PAGESIZE
    try:
        mapped.madvise(mmap.MADV_WILLNEED, start, min(offset + size, len(mapped)) - start)
    except (ValueError, OSError):
        pass  # advice only


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
