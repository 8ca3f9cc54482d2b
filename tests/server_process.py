"""Start `seaembed serve` as a real process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """python: the interpreter whose seaembed serves (benchmarks start an older checkout's);
    env: extra environment, None removing a variable (SEAEMBED_THREADS defaults to 1 so tests
    leave the cores to each other; SEAEMBED_DRAIN_S to 0 so stopping a test server does not wait
    for a load balancer that is not there)."""

    def __init__(self, bundle, *flags: str, python: str | None = None, env: dict | None = None, startup_s: float = 60):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = f"/tmp/seaembed-test-server-{self.port}.log"
        self._log = open(self.log_path, "w")
        env = {**os.environ, "SEAEMBED_THREADS": "1", "SEAEMBED_DRAIN_S": "0", **(env or {})}
        env = {k: v for k, v in env.items() if v is not None}  # None removes a variable
        self.process = subprocess.Popen(
            [python or sys.executable, "-m", "seaembed.runtime.cli", "serve", str(bundle), "--port", str(self.port), *flags],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.time() + startup_s
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{open(self.log_path).read()}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready within {startup_s} s:\n{open(self.log_path).read()}")

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return open(self.log_path).read()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode
