"""A member written on a thread of its own, so compressing and hashing overlap reading.

The export's main thread reads COPY blocks from the server (export_copy.py) and hands
each one over here; a worker thread hashes, compresses and writes it (archive.MemberWriter).
zstandard and hashlib release the GIL on large blocks, so on two cores the worker runs
while the reader waits for the server's next rows.

The queue is bounded (``DEPTH`` blocks), so memory stays flat whatever the table's size:
when the disk or the compressor is slower than the server, the reader simply waits.
A failure on the worker (a full disk) is raised in the reader at its next ``write`` or at
``close``; ``abort`` stops the worker and deletes the member file.
"""

from __future__ import annotations

import queue
import threading

from edms_pgdump.archive.package import MemberInfo, MemberWriter

DEPTH = 4  # blocks queued at most (of export_copy.BLOCK bytes each)


class BackgroundMember:
    """``MemberWriter``'s ``write``/``close``/``abort``, with the writing on a worker thread."""

    def __init__(self, member: MemberWriter, depth: int = DEPTH) -> None:
        self.member = member
        self._queue: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._dropping = False  # after a failure or abort: the worker empties the queue only
        self._thread = threading.Thread(target=self._run, name=f"edms-pgdump {member.member}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._dropping:
                continue
            try:
                self.member.write(block)
            except BaseException as exc:  # reported to the reader, which aborts
                self._error = exc
                self._dropping = True

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, block: bytes | bytearray) -> None:
        """Queue ``block`` (not copied: the caller must not change it afterwards)."""
        self._raise_failure()
        self._queue.put(block)

    def close(self) -> MemberInfo:
        """Wait for every queued block to be written, then finish the member."""
        self._queue.put(None)
        self._thread.join()
        self._raise_failure()
        return self.member.close()

    def abort(self) -> None:
        """Drop what is queued, stop the worker and delete the member file."""
        self._dropping = True
        if self._thread.is_alive():
            self._queue.put(None)  # never blocks for long: the worker only empties the queue now
            self._thread.join()
        self.member.abort()


__all__ = ["DEPTH", "BackgroundMember"]
