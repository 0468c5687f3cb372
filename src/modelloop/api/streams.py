"""Files in and out with bounded memory: an upload streams to a temporary folder in the
workspace chunk by chunk (its size counted as it arrives), a download is a tar written to disk and
sent from there; and results as the client rebuilds them (JSON, Arrow IPC, bytes), a table
batch by batch when its rows can be read so."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, StreamingResponse

from modelloop.errors import InvalidInput
from modelloop.remote.codec import encode

ARROW = "application/vnd.apache.arrow.stream"
TAR = "application/x-tar"
RESULT_HEADER = "X-Modelloop-Result"
_FLUSH = 1 << 20  # write to disk in 1 MiB pieces: few syscalls, bounded memory


def scratch(ws) -> Path:
    """A new temporary folder in the workspace (same disk as the artifacts' staging)."""
    path = ws.config.state_dir / "tmp" / "api" / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def safe_name(filename: str | None) -> str:
    name = PurePosixPath((filename or "upload").replace("\\", "/")).name
    if not name or name in (".", "..") or name.startswith("."):
        raise InvalidInput(f"filename {filename!r}: not a file name",
                           hint="give the uploaded file's name, e.g. ?filename=day1.csv")  # fmt: skip
    return name


async def receive_upload(request: Request, folder: Path, filename: str | None,
                         limit: int) -> list[Path]:  # fmt: skip
    """The request body saved under ``folder``: one file named ``filename``, or the files of a tar
    (``Content-Type: application/x-tar``). More than ``limit`` bytes: 413."""
    import anyio

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the upload is {int(declared)} bytes; the limit is {limit} "
                                 "([api] max_upload_bytes)")  # fmt: skip
    is_tar = request.headers.get("content-type", "").split(";")[0].strip() == TAR or (
        filename or ""
    ).lower().endswith(".tar")
    target = folder / ("upload.tar" if is_tar else safe_name(filename))
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    with open(target, "wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"the upload is over the limit of {limit} bytes "
                                         "([api] max_upload_bytes)")  # fmt: skip
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= _FLUSH:
                await anyio.to_thread.run_sync(fh.writelines, pending)
                pending, pending_size = [], 0
        if pending:
            await anyio.to_thread.run_sync(fh.writelines, pending)
    if size == 0 and (is_tar or not filename):  # an empty named file: ingest says what is wrong
        raise InvalidInput("the upload is empty", hint="send the file as the request body")
    if not is_tar:
        return [target]
    return await anyio.to_thread.run_sync(_untar, target, folder / "files")


def upload_argument(name: str, files: list[Path], folder: Path):
    """The value of the parameter an upload stands for: the files (``paths``), the one file or
    the folder sent as a tar (``path``), or the folder the tar was unpacked into (any other name)."""
    if name == "paths":
        return [str(f) for f in files]
    if name == "path":
        if (folder / "files").is_dir():  # a tar: the folder it holds (a local path may be one)
            return str(folder / "files")
        if len(files) != 1:
            raise InvalidInput(f"upload one file, not {len(files)}")
        return str(files[0])
    root = folder / "files"
    if not root.is_dir():
        raise InvalidInput(f"{name}: upload the folder as a tar of its files",
                           hint="send Content-Type: application/x-tar")  # fmt: skip
    return str(root)


def _untar(archive: Path, dest: Path) -> list[Path]:
    """The regular files of ``archive`` extracted under ``dest``; links, devices and names that
    leave ``dest`` are refused (the ``data`` filter of PEP 706)."""
    dest.mkdir()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InvalidInput(f"the uploaded tar cannot be read: {exc}") from None
    archive.unlink()
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    if not files:
        raise InvalidInput("the uploaded tar holds no files")
    return files


def tar_response(folder: Path, out: Path, result: Any, cleanup: Path) -> FileResponse:
    """``out`` (a file or folder) as a tar written into ``folder``, sent from disk, ``result``
    (paths relative to ``out``) in the result header; ``cleanup`` removed once sent."""
    archive = folder / "download.tar"
    with tarfile.open(archive, "w") as tar:
        if out.is_dir():
            for path in sorted(out.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(out)), recursive=False)
        elif out.exists():
            tar.add(out, arcname=out.name)
    header = json.dumps(relative(result, out), separators=(",", ":"))
    return FileResponse(archive, media_type=TAR, headers={RESULT_HEADER: header},
                        background=BackgroundTask(shutil.rmtree, cleanup, ignore_errors=True))  # fmt: skip


def relative(value: Any, base: Path) -> Any:
    """``value`` (JSON) with every path under ``base`` made relative to it."""
    prefix = str(base)
    if isinstance(value, str) and (value == prefix or value.startswith(prefix + os.sep)):
        return os.path.relpath(value, prefix)
    if isinstance(value, list):
        return [relative(v, base) for v in value]
    if isinstance(value, dict):
        return {k: relative(v, base) for k, v in value.items()}
    return value


def arrow_stream(batches: Iterator, empty: Callable[[], Any]) -> Response:
    """Record batches as an Arrow IPC stream, each written and sent as it is read: memory
    bounded by a batch whatever the table's size. No batch (no rows): ``empty()``, the table
    the method itself gives (its schema)."""
    first = next(batches, None)
    if first is None:
        return render(empty())
    return StreamingResponse(_ipc([first], batches), media_type=ARROW)


def _ipc(head: list, rest: Iterator) -> Iterator[bytes]:
    import itertools

    import pyarrow as pa

    sink = _Pending()
    with pa.ipc.new_stream(sink, head[0].schema) as writer:
        for batch in itertools.chain(head, rest):
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()  # the end-of-stream marker


class _Pending:
    """A file the IPC writer writes into, emptied by :meth:`take` after each batch."""

    closed = False

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(self.chunks[-1])

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def render(value: Any, headers: dict | None = None) -> Response:
    """The result as the client rebuilds it (:mod:`modelloop.remote.codec`): an Arrow table as
    IPC (a pandas frame too), bytes as they are, the rest as JSON (NaN and infinities as null)."""
    import pyarrow as pa

    if type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame":
        value = pa.Table.from_pandas(value, preserve_index=False)
    if isinstance(value, pa.Table):
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, value.schema) as writer:
            writer.write_table(value)
        return Response(sink.getvalue(), media_type=ARROW, headers=headers)
    if isinstance(value, bytes | bytearray):
        return Response(bytes(value), media_type="application/octet-stream", headers=headers)
    data = encode(value)
    try:
        body = orjson.dumps(data)
    except TypeError:  # an integer beyond 64 bits (e.g. an argument an audit record kept)
        body = json.dumps(data, default=str).encode()
    return Response(body, media_type="application/json", headers=headers)
