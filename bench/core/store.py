"""Persistence: content hashes, atomic writes and verified safetensors checkpoints.

Every artifact is written to a temporary file in the same folder and moved into
place with ``os.replace``, so a reader never sees a half-written file. Nothing is
ever unpickled: tensors go through safetensors, records through JSON.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

if TYPE_CHECKING:  # torch is imported where tensors are saved or loaded: the report needs none
    import torch


def stable_hash(obj: Any, length: int = 16) -> str:
    """SHA-256 of the canonical JSON form of ``obj``, truncated to ``length`` hex digits."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes in C order (dtype and shape are not included)."""
    array = tensor.detach().cpu().contiguous().numpy()
    return hashlib.sha256(array.tobytes()).hexdigest()


def tensors_checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """One SHA-256 over a name → tensor mapping, names sorted."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensor_sha256(tensors[name]).encode())
    return digest.hexdigest()


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it, which would race with
# files created meanwhile by other threads.
_UMASK = _read_umask()


def _atomic_target(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path``, with the mode a plain ``open`` would give it
    (mkstemp's is 0600, which would hide results from the other users of a shared folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, tmp


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created empty if absent) while the block runs.

    For artifacts that several processes may want to build (a cached model that two
    workers of a cluster both need): the first builds it under the lock, the others wait
    and then find it built. ``flock`` locks are released by the kernel when a process
    dies, so a killed worker never leaves a stale lock; they hold on a local file system
    and on NFS mounts with locking (the default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either absent, old or complete."""
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Save tensors atomically as safetensors, with a checksum of their content in the metadata."""
    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    meta = dict(metadata)
    meta["checksum"] = tensors_checksum(cpu)
    from safetensors.torch import save_file

    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        save_file(cpu, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata header of a safetensors file (no tensor data is read)."""
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        if size > path.stat().st_size - 8:
            raise ValueError(f"{path}: header length {size} exceeds the file")
        header = json.loads(handle.read(size))
    return dict(header.get("__metadata__", {}))


def load_verified(path: Path, expected_key: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    """Load a checkpoint only if it is intact and was made for ``expected_key``.

    Returns None when the file is missing, unreadable, made for another key, or its
    tensors do not match the checksum stored at save time: the caller then rebuilds it.
    """
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        metadata = read_metadata(path)
        tensors = load_file(path)
    except (OSError, ValueError, SafetensorError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if metadata.get("key") != expected_key:
        return None
    if metadata.get("checksum") != tensors_checksum(tensors):
        return None
    return tensors, metadata
