"""Zip containers (XLSX, KMZ) opened without inflating a bomb.

Before anything is decompressed, the sizes the zip's central directory declares are checked
against the limit: in all and member by member against their compressed size. Python's
``zipfile`` stops every member at its declared size (and fails its CRC check beyond), so a
member that lies about its size cannot inflate past what was checked here.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from deconflict.errors import InvalidRequest, TooLarge

MAX_RATIO = 200
"""The most a member may inflate (declared size over compressed size) once past
``RATIO_FLOOR``: real sheets and KML compress 5-30 times; a bomb compresses thousands of times."""
RATIO_FLOOR = 1 << 20
"""Members smaller than this (1 MiB) inflated are not held to the ratio: tiny files of
repeated bytes compress very well and are harmless."""


def open_zip(data: bytes, what: str, *, max_bytes: int) -> zipfile.ZipFile:
    """The zip in ``data``; 400 if it is not one, 413 if it would inflate past ``max_bytes``
    or any member beyond ``MAX_RATIO``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise InvalidRequest(f"the file is not {what}: it is not a zip file", field="body") from exc
    total = 0
    for member in members:
        total += member.file_size
        if total > max_bytes:
            raise TooLarge(
                f"the {what} file would decompress to more than {max_bytes} bytes",
                field="body",
            )
        ratio_base = max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR and member.file_size / ratio_base > MAX_RATIO:
            raise TooLarge(
                f"the {what} file's member {member.filename[:100]!r} would decompress "
                f"{member.file_size // ratio_base} times its size: refused as a zip bomb",
                field="body",
            )
    return archive


def read_member(archive: zipfile.ZipFile, name: str, what: str) -> bytes:
    try:
        return archive.read(name)
    except (
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        OSError,
        EOFError,
        RuntimeError,
        NotImplementedError,
        zlib.error,
    ) as exc:
        # A truncated, corrupt, encrypted or oddly compressed member: the file's fault.
        raise InvalidRequest(
            f"the {what} file's {name[:100]!r} cannot be read: {exc}", field="body"
        ) from exc
