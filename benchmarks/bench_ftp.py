"""FTP staging vs curl: one large file over loopback, same server, same netrc, one run.

A pyftpdlib server runs in its own process (so that it does not share our GIL) and serves
one file of random bytes.  alcapctl's FTP archive (``FtpArchive.fetch``: SIZE, binary RETR
into ``.part``, size check, rename) and ``curl --netrc-file`` fetch it in alternating order;
the best time of each is kept.  ``ratio`` is alcapctl's rate over curl's (1.0: as fast).

    python benchmarks/bench_ftp.py --size 1G
    python benchmarks/bench_ftp.py --size 200M --repeat 3 --json

``benchmarks/run.py`` imports ``bench_ftp()``.  Not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alcapctl.archive.ftp import FtpArchive

__all__ = ["bench_ftp", "parse_size"]

USER, PASSWORD = "bench", "bench-password"
NAME = "run02091.mid"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``1G``, ``200M``, ``4096``: bytes (binary units)."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1] if text and text[-1] in _UNITS else ""
    return int(float(text.removesuffix(unit)) * _UNITS[unit])


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(root: Path) -> Iterator[int]:
    port = _free_port()
    argv = [sys.executable, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(port)]
    argv += ["-d", str(root), "-u", USER, "-P", PASSWORD]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the FTP server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _time_ours(url: str, netrc: Path, dest: Path) -> float:
    archive = FtpArchive(url, netrc=netrc, timeout=60, retries=0)
    start = time.perf_counter()
    archive.fetch(NAME, dest)
    return time.perf_counter() - start


def _time_curl(url: str, netrc: Path, dest: Path) -> float:
    argv = ["curl", "--silent", "--show-error", "--netrc-file", str(netrc)]
    start = time.perf_counter()
    subprocess.run([*argv, "--output", str(dest), f"{url}/{NAME}"], check=True)
    return time.perf_counter() - start


def bench_ftp(
    size: int = 1 << 30, repeat: int = 1, workdir: Path | None = None
) -> dict[str, float]:
    """Fetch a ``size``-byte file with alcapctl and with curl; best times, rates and ratio."""
    if shutil.which("curl") is None:
        raise RuntimeError("curl is not on PATH")
    with tempfile.TemporaryDirectory(prefix="alcapctl-bench-ftp-", dir=workdir) as tmp:
        base = Path(tmp)
        (base / "ftp" / "raw").mkdir(parents=True)
        _write_random(base / "ftp" / "raw" / NAME, size)
        netrc = base / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
        netrc.chmod(0o600)
        times: dict[str, list[float]] = {"alcapctl": [], "curl": []}
        with _server(base / "ftp") as port:
            url = f"ftp://127.0.0.1:{port}/raw"
            for i in range(repeat):
                order = ["alcapctl", "curl"] if i % 2 == 0 else ["curl", "alcapctl"]
                for tool in order:
                    dest = base / f"{tool}.mid"
                    timer = _time_ours if tool == "alcapctl" else _time_curl
                    times[tool].append(timer(url, netrc, dest))
                    if dest.stat().st_size != size:
                        raise RuntimeError(f"{tool} fetched {dest.stat().st_size} of {size} bytes")
                    dest.unlink()
    ours, curl = min(times["alcapctl"]), min(times["curl"])
    mb = size / 1e6
    return {
        "size_bytes": size,
        "repeat": repeat,
        "alcapctl_seconds": round(ours, 3),
        "alcapctl_mb_per_s": round(mb / ours, 1),
        "curl_seconds": round(curl, 3),
        "curl_mb_per_s": round(mb / curl, 1),
        "ratio": round(curl / ours, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="file size, e.g. 1G, 200M (default 1G)")
    parser.add_argument("--repeat", type=int, default=1, help="fetches per tool (best kept)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = bench_ftp(parse_size(args.size), args.repeat)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    size_mb = figures["size_bytes"] / 1e6
    print(f"FTP staging of {size_mb:.0f} MB over loopback, best of {args.repeat}")
    for tool in ("alcapctl", "curl"):
        seconds, rate = figures[f"{tool}_seconds"], figures[f"{tool}_mb_per_s"]
        print(f"  {tool:<9} {seconds:8.3f} s  {rate:8.1f} MB/s")
    print(f"  ratio (alcapctl rate / curl rate): {figures['ratio']:.2f}")


if __name__ == "__main__":
    main()
