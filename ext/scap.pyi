from tracer.capture.scap.translate import Translator

__all__ = ["Decoder"]


class Decoder:
    tr: Translator
    skipped: dict[str, int]
    limit: int
    count: int
    events: int
    first_ts: int
    last_ts: int
    error: tuple[int, int, str] | None
    def __init__(self, tr: Translator, skipped: dict[str, int], limit: int) -> None: ...
    def run(self, buf: bytes, pos: int, end: int) -> int: ...
    def block(self, body: bytes, btype: int) -> None: ...
    def take_counts(self) -> list[tuple[str, int]]: ...
    def flush(self) -> tuple[bytes, int, int, int]: ...
