"""HTTP over a unix socket, the way the runtimes' APIs (docker, podman, cri-o) are spoken."""

from __future__ import annotations

import http.client
import socket

from .sources import SourceError


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: the runtimes' APIs need nothing more."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def get(what: str, sock: str, url: str, timeout: float) -> tuple[int, bytes]:
    """``GET url`` on runtime ``what``'s socket ``sock``: (status, body), or :class:`SourceError`
    saying what went wrong in words a user can act on."""
    conn = UnixHTTPConnection(sock, timeout)
    try:
        conn.request("GET", url, headers={"Host": "localhost", "Accept": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except FileNotFoundError:
        raise SourceError(
            f"{what}: socket {sock} not found (runtime not installed, or its socket not mounted)"
        ) from None
    except PermissionError:
        raise SourceError(
            f"{what}: permission denied on {sock} (ktrace needs root, or the runtime's group)"
        ) from None
    except ConnectionRefusedError:
        raise SourceError(f"{what}: nothing listens on {sock} (runtime stopped?)") from None
    except TimeoutError:
        raise SourceError(f"{what}: no answer on {sock} within {timeout:g}s") from None
    except (OSError, http.client.HTTPException) as e:
        raise SourceError(f"{what}: {sock}: {e}") from None
    finally:
        conn.close()
