"""A real single-node KRaft broker for development, tests and the demo.

The jars come from Maven Central through Maven (deploy/local/pom.xml) and are cached under
``$ALARMFLOW_KAFKA_HOME/libs``; the broker runs on the machine's JDK and binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from streams.errors import BrokerError
from streams.kafka_admin import ensure_topics, list_topics
from streams.settings import TOPIC_SUFFIXES, Settings

DEPLOY_LOCAL = Path(__file__).resolve().parents[1] / "deploy" / "local"


@dataclass(frozen=True)
class BrokerPaths:
    home: Path

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log(self) -> Path:
        return self.home / "broker.log"


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host or "127.0.0.1", int(port)


def resolve_jars(paths: BrokerPaths) -> None:
    """Copy the broker's runtime classpath from Maven into ``libs`` once per pom version."""
    pom = DEPLOY_LOCAL / "pom.xml"
    stamp = paths.libs / f".resolved-{hashlib.sha256(pom.read_bytes()).hexdigest()[:16]}"
    if stamp.exists():
        return
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is needed to resolve the Kafka broker jars")
    shutil.rmtree(paths.libs, ignore_errors=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={paths.libs.resolve()}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"mvn could not resolve the broker:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    stamp.touch()


def _write_config(settings: Settings, paths: BrokerPaths) -> None:
    host, port = _host_port(settings.kafka_bootstrap)
    controller = settings.kafka_controller_port
    paths.config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{host}:{controller}",
                f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
                f"advertised.listeners=PLAINTEXT://{host}:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={paths.data.resolve()}",
                f"num.partitions={settings.partitions}",
                # Single node: internal topics (offsets, transactions) must fit on one replica.
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )
    )


def _java(paths: BrokerPaths, *args: str) -> list[str]:
    return [
        "java",
        "-Xms256m",
        "-Xmx768m",
        f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'log4j2.properties'}",
        "-cp",
        f"{paths.libs}/*",
        *args,
    ]


def format_storage(paths: BrokerPaths, cluster_id: str | None = None) -> None:
    """Format the data directory once (KRaft), with a new cluster id unless one is given."""
    if (paths.data / "meta.properties").exists():
        return
    cluster_id = cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # One id in 64 starts with "-": as a separate argument argparse would take it for an option.
    cmd = _java(paths, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(paths.config))
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"kafka-storage format failed:\n{result.stdout}{result.stderr}")


def _pid(paths: BrokerPaths) -> int | None:
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    try:  # started by this process (a long-lived caller restarting its broker): reap it once it has exited
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def _port_open(bootstrap: str) -> bool:
    try:
        with socket.create_connection(_host_port(bootstrap), timeout=1):
            return True
    except OSError:
        return False


def up(settings: Settings, timeout: float = 90.0) -> list[str]:
    """Resolve, format, start, wait until ready, create the topics; returns the topics created."""
    paths = BrokerPaths(settings.kafka_home.resolve())
    paths.home.mkdir(parents=True, exist_ok=True)
    resolve_jars(paths)
    if _pid(paths) is None:
        if _port_open(settings.kafka_bootstrap):
            raise BrokerError(f"{settings.kafka_bootstrap} is taken by another process")
        _write_config(settings, paths)
        format_storage(paths)
        with paths.log.open("ab") as log:
            proc = subprocess.Popen(
                _java(paths, "kafka.Kafka", str(paths.config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        paths.pid.write_text(str(proc.pid))
    _wait_ready(settings, paths, timeout)
    names = [settings.topic(s) for s in TOPIC_SUFFIXES]
    return asyncio.run(ensure_topics(settings.kafka_bootstrap, names, settings.partitions))


def _wait_ready(settings: Settings, paths: BrokerPaths, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _pid(paths) is None:
            raise BrokerError(f"the broker exited during start-up; see {paths.log}")
        if _port_open(settings.kafka_bootstrap):
            try:
                asyncio.run(list_topics(settings.kafka_bootstrap))
            except Exception:  # noqa: BLE001 - not ready yet; any client error means "retry"
                time.sleep(0.5)
                continue
            return
        time.sleep(0.5)
    raise BrokerError(f"the broker was not ready after {timeout:.0f}s; see {paths.log}")


def down(settings: Settings, purge: bool = False, timeout: float = 30.0) -> bool:
    """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); returns whether one was running."""
    paths = BrokerPaths(settings.kafka_home.resolve())
    pid = _pid(paths)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid(paths) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid(paths) is not None:
            os.kill(pid, signal.SIGKILL)
    paths.pid.unlink(missing_ok=True)
    if purge:
        shutil.rmtree(paths.data, ignore_errors=True)
    return pid is not None


def status(settings: Settings) -> dict[str, object]:
    paths = BrokerPaths(settings.kafka_home.resolve())
    pid = _pid(paths)
    topics: list[str] = []
    if pid is not None and _port_open(settings.kafka_bootstrap):
        try:
            topics = asyncio.run(list_topics(settings.kafka_bootstrap))
        except Exception:  # noqa: BLE001 - status reports, it does not fail
            topics = []
    return {
        "running": pid is not None,
        "pid": pid,
        "bootstrap": settings.kafka_bootstrap,
        "home": str(paths.home),
        "topics": topics,
    }
