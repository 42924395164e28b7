"""Real Redis topologies on free loopback ports: Sentinel (master + replica + sentinel), TLS
and Cluster (plain or TLS only).

Recipes from ../shared/TESTING.md. Every process is started here and stopped by its PID.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from tests.support.redis_server import RedisServer, free_port, redis_server_binary

SERVICE = "mymaster"


def wait_for(condition: object, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll `condition()` until it is truthy; RuntimeError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except redis.RedisError as exc:
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


class SentinelTopology:
    """A master, `replicas` replicas and one sentinel monitoring them as `mymaster`.

    `tls=True`: every server and the sentinel speak TLS only (no plain port), replication and
    the sentinel's links to the servers too; certificates in `self.tls`, URL `rediss+sentinel://`.
    """

    def __init__(self, workdir: Path, replicas: int = 1, password: str | None = None,
                 tls: bool = False) -> None:
        self.workdir = workdir
        self.password = password
        self.tls = TlsFiles(workdir / "certs") if tls else None
        # The master must not wait 5 s before a diskless sync, or the replica link waits too.
        self.master = self._server(workdir / "master", "--repl-diskless-sync-delay", "0")
        self.replicas = [
            self._server(workdir / f"replica{i}", "--replicaof", "127.0.0.1",
                         str(self.master.port), "--repl-diskless-sync-delay", "0")
            for i in range(replicas)]
        self.sentinel_port = free_port()
        self.sentinel_process: subprocess.Popen[bytes] | None = None

    def _server(self, workdir: Path, *args: str) -> RedisServer:
        if self.password is not None:
            args = (*args, "--masterauth", self.password)
        if self.tls is None:
            return RedisServer(workdir, password=self.password, extra_args=args)
        return TlsOnlyRedisServer(workdir, self.tls, password=self.password,
                                  extra_args=(*args, "--tls-replication", "yes"))

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, *self.replicas]

    def url(self, db: int = 0, user: str = "") -> str:
        auth = f"{user}:{self.password}@" if self.password else ""
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        return f"{scheme}://{auth}127.0.0.1:{self.sentinel_port}/{db}/{SERVICE}"

    def sentinel(self) -> redis.Redis:
        tls = self.tls.client_options() if self.tls else {}
        return redis.Redis(host="127.0.0.1", port=self.sentinel_port, socket_timeout=2,
                           decode_responses=True, **tls)

    def start(self) -> None:
        self.master.start()
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            with replica.client() as client:
                wait_for(lambda c=client: c.info("replication").get("master_link_status") == "up",
                         10, "the replica link")
        with self.master.client() as master:  # the master counts a replica a little later
            wait_for(lambda: int(master.info("replication").get("connected_slaves", 0))
                     == len(self.replicas), 10, "the master to count its replicas")
        config = self.workdir / "sentinel.conf"
        lines = [f"port {self.sentinel_port}", "bind 127.0.0.1", f"dir {self.workdir}",
                 f"logfile {self.workdir / 'sentinel.log'}",
                 f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 1",
                 f"sentinel down-after-milliseconds {SERVICE} 1000",
                 f"sentinel failover-timeout {SERVICE} 3000"]
        if self.password:
            lines.append(f"sentinel auth-pass {SERVICE} {self.password}")
        if self.tls:  # the client certificate is also the one it shows to the servers
            lines[0] = f"port 0\ntls-port {self.sentinel_port}"
            lines += [f"tls-cert-file {self.tls.client[0]}", f"tls-key-file {self.tls.client[1]}",
                      f"tls-ca-cert-file {self.tls.ca[0]}", "tls-replication yes"]
        config.write_text("\n".join(lines) + "\n")
        self.sentinel_process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with self.sentinel() as sentinel:
            # A replica can be promoted once the sentinel has its INFO: until then a failover
            # fails with NOGOODSLAVE.
            wait_for(lambda: self._promotable(sentinel) == len(self.replicas), 15,
                     "the sentinel to know the replicas")

    @staticmethod
    def _promotable(sentinel: redis.Redis) -> int:
        replicas = sentinel.execute_command("SENTINEL", "REPLICAS", SERVICE)
        rows = [dict(zip(row[::2], row[1::2], strict=True)) if isinstance(row, list) else row
                for row in replicas]
        return sum(1 for row in rows if row.get("flags") == "slave"
                   and row.get("master-link-status") == "ok"
                   and int(row.get("info-refresh", 10**9)) < 5000)

    def master_address(self) -> tuple[str, int]:
        with self.sentinel() as sentinel:
            host, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return str(host), int(port)

    def server_at(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def failover(self) -> None:
        """`SENTINEL FAILOVER`: returns at once; the promotion happens in the background."""
        with self.sentinel() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)

    def stop(self) -> None:
        if self.sentinel_process is not None:
            self.sentinel_process.terminate()
            try:
                self.sentinel_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.sentinel_process.kill()
                self.sentinel_process.wait(timeout=5)
            self.sentinel_process = None
        for server in self.servers:
            server.stop()


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


# P-256 keys: made in milliseconds, where an RSA-2048 key takes about 0.4 s here.
NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA; returns (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    openssl("req", "-x509", *NEW_KEY, "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert), cwd=directory)
    return cert, key


def make_signed(directory: Path, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by `ca`; returns (certificate, key)."""
    cert, key, csr = (directory / f"{name}.crt", directory / f"{name}.key",
                      directory / f"{name}.csr")
    extensions = directory / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", *NEW_KEY, "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(csr), cwd=directory)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert),
            cwd=directory)
    return cert, key


class TlsRedis:
    """A redis-server that speaks TLS only, with a CA, server and client certificate of its own.

    `tls-auth-clients yes` (redis-server's default): a client must show a certificate signed
    by the CA, so the tests exercise REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE too.
    """

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.workdir = workdir
        self.certs = workdir / "certs"
        self.ca = make_ca(self.certs, "ca")
        self.server_cert = make_signed(self.certs, "server", self.ca)
        self.client_cert = make_signed(self.certs, "client", self.ca)
        self.wrong_ca = make_ca(self.certs, "wrong-ca")
        self.port = free_port()
        self.password = password
        self.server = RedisServer(workdir / "redis", port=free_port(), password=password,
                                  extra_args=("--tls-port", str(self.port),
                                              "--tls-cert-file", str(self.server_cert[0]),
                                              "--tls-key-file", str(self.server_cert[1]),
                                              "--tls-ca-cert-file", str(self.ca[0])))

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"rediss://{auth}127.0.0.1:{self.port}"

    def start(self) -> None:
        # The plain port only serves the readiness check and the tests' own inspection.
        self.server.start()

    def client(self) -> redis.Redis:
        return self.server.client()

    def stop(self) -> None:
        self.server.stop()


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port with a free cluster bus port (+10000)")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class TlsFiles:
    """A CA, one server certificate (127.0.0.1) and one client certificate signed by it, and an
    unrelated CA (for the wrong-CA tests)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = make_ca(directory, "ca")
        self.server = make_signed(directory, "server", self.ca)
        self.client = make_signed(directory, "client", self.ca)
        self.wrong_ca = make_ca(directory, "wrong-ca")

    def client_options(self) -> dict[str, Any]:
        return {"ssl": True, "ssl_ca_certs": str(self.ca[0]), "ssl_certfile": str(self.client[0]),
                "ssl_keyfile": str(self.client[1])}

    def settings(self, ca: Path | None = None) -> dict[str, Path]:
        """The REDIS_TLS_* settings (as Settings keyword arguments)."""
        return {"redis_tls_ca_file": ca or self.ca[0], "redis_tls_cert_file": self.client[0],
                "redis_tls_key_file": self.client[1]}

    def cli_args(self) -> list[str]:
        return ["--tls", "--cacert", str(self.ca[0]), "--cert", str(self.client[0]),
                "--key", str(self.client[1])]


class TlsOnlyRedisServer(RedisServer):
    """A redis-server with no plain port (`--port 0`): `port` is its TLS port, and `client()`
    (the readiness check and the tests' own look) speaks TLS with the client certificate."""

    def __init__(self, workdir: Path, certs: TlsFiles, port: int | None = None,
                 password: str | None = None, extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(workdir, port=port, password=password, extra_args=extra_args)
        self.certs = certs
        # Later arguments win: the plain port RedisServer.start passes is turned off.
        self.extra_args = ("--port", "0", "--tls-port", str(self.port),
                           "--tls-cert-file", str(certs.server[0]),
                           "--tls-key-file", str(certs.server[1]),
                           "--tls-ca-cert-file", str(certs.ca[0]), *extra_args)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           socket_timeout=2, decode_responses=True, **self.certs.client_options())


class ClusterTopology:
    """`primaries` primaries, each with `replicas_per_primary` replicas (redis-cli --cluster).

    `--cluster-node-timeout 2000`: a killed primary is failed over by its replica in ~2-4 s.
    `tls=True`: TLS only (no plain port), the cluster bus and replication over TLS too
    (`--tls-cluster`, `--tls-replication`); certificates in `self.tls`, URL `rediss+cluster://`.
    """

    def __init__(self, workdir: Path, primaries: int = 3, replicas_per_primary: int = 0,
                 password: str | None = None, tls: bool = False) -> None:
        self.workdir = workdir
        self.password = password
        self.replicas_per_primary = replicas_per_primary
        self.tls = TlsFiles(workdir / "certs") if tls else None
        count = primaries * (1 + replicas_per_primary)
        auth = ("--masterauth", password) if password else ()
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0", *auth)
        self.servers: list[RedisServer] = [
            RedisServer(workdir / f"node{i}", port=cluster_port(), password=password,
                        extra_args=args) if self.tls is None else
            TlsOnlyRedisServer(workdir / f"node{i}", self.tls, port=cluster_port(),
                               password=password, extra_args=(
                                   *args, "--tls-cluster", "yes", "--tls-replication", "yes"))
            for i in range(count)]

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def url(self, nodes: int = 2, user: str = "") -> str:
        auth = f"{user}:{self.password}@" if self.password else ""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports[:nodes])
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://{auth}{hosts}"

    def start(self) -> None:
        for server in self.servers:
            server.start()
        cli = [redis_server_binary().replace("redis-server", "redis-cli")]
        if self.password:
            cli += ["-a", self.password, "--no-auth-warning"]
        if self.tls:
            cli += self.tls.cli_args()
        subprocess.run([*cli, "--cluster", "create",
                        *(f"127.0.0.1:{port}" for port in self.ports),
                        "--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        self.wait_ok(20)
        if self.replicas_per_primary:
            wait_for(lambda: len(self.primaries_with_replicas()) == len(self.ports)
                     // (1 + self.replicas_per_primary), 20, "every primary's replica link")

    def alive(self) -> list[RedisServer]:
        return [server for server in self.servers if server.process is not None]

    def state_ok(self) -> bool:
        """cluster_state:ok on every running node (each has its own view)."""
        for server in self.alive():
            with server.client() as client:
                if client.cluster("info").get("cluster_state") != "ok":
                    return False
        return True

    def wait_ok(self, timeout: float) -> None:
        wait_for(self.state_ok, timeout, "cluster_state:ok", interval=0.05)

    def role(self, server: RedisServer) -> str:
        with server.client() as client:
            return str(client.info("replication").get("role"))

    def primaries(self) -> list[RedisServer]:
        return [server for server in self.alive() if self.role(server) == "master"]

    def primaries_with_replicas(self) -> list[RedisServer]:
        found = []
        for server in self.primaries():
            with server.client() as client:
                info = client.info("replication")
            if any(isinstance(value, dict) and value.get("state") == "online"
                   for name, value in info.items() if name.startswith("slave")):
                found.append(server)
        return found

    def server_for(self, key: str) -> RedisServer:
        """The running primary serving `key`'s slot."""
        for server in self.primaries():
            with server.client() as client:
                slot = client.cluster("keyslot", key)
                nodes = client.cluster("slots")
            for start, end, primary, *_ in nodes:
                if start <= int(slot) <= end:
                    return next(s for s in self.alive() if s.port == int(primary[1]))
        raise RuntimeError(f"no primary serves {key!r}")

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        with primary.client() as client:
            info = client.info("replication")
        ports = {int(value["port"]) for name, value in info.items()
                 if name.startswith("slave") and isinstance(value, dict)}
        return [server for server in self.alive() if server.port in ports]

    def kill(self, server: RedisServer) -> None:
        """SIGKILL: the primary dies without a goodbye, as in a crash."""
        assert server.process is not None
        server.process.kill()
        server.process.wait(timeout=5)
        server.process = None

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
