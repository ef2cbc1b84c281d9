"""deploy/k8s as a platform team gets it: each kustomization builds, its output is valid and agrees with the code.

- ``kustomize build`` on the base and on each overlay.
- ``kubeconform -strict -summary`` on the output:
  - core kinds against the Kubernetes API's JSON schemas (from the kubernetes-validate wheel, made standalone here);
  - Strimzi and KEDA kinds against their CRDs, converted here as kubeconform's openapi2jsonschema.py does
    (every object with properties refuses unknown ones).
  - The Altinity kinds (ClickHouseInstallation, ClickHouseKeeperInstallation) are skipped: no registry this project
    reaches serves their CRDs. The cross-checks below read them; no schema does.
- The same validator rejects broken copies of the built manifests, so a pass means something.
- Cross-checks with the code: the topics and their settings (streams/kafka_admin.py), partitions, consumer groups,
  the settings' names (streams/settings.py), the probe path (the routes the worker's Faust app serves), the
  ClickHouse cluster and DSN.

The tools come from deploy/k8s/tools/install.py (``make k8s-tools``, which ``make test`` and ``make unit`` run first).
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from streams import kafka_admin
from streams.agents.wiring import INPUTS
from streams.kafka_admin import _topic_config
from streams.settings import TOPIC_SUFFIXES, Settings, env_names

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
TOOLS = REPO / "var" / "tools"
KUSTOMIZATIONS = ["base", *sorted(f"overlays/{p.name}" for p in (K8S / "overlays").iterdir() if p.is_dir())]
KUBERNETES_VERSION = "1.34.0"  # deploy/k8s/tools/install.py extracts this version's schemas
UNVALIDATED_KINDS = ("ClickHouseInstallation", "ClickHouseKeeperInstallation")  # no reachable registry has the CRDs
Doc = dict[str, Any]


# --- tools --------------------------------------------------------------------------------------------------------


def _tool(name: str) -> Path:
    path = TOOLS / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make k8s-tools` (deploy/k8s/tools/install.py)")
    return path


def _yaml() -> Any:
    if str(TOOLS / "python") not in sys.path:
        sys.path.append(str(TOOLS / "python"))
    try:
        return importlib.import_module("yaml")
    except ImportError:
        pytest.fail("PyYAML is missing from var/tools/python: run `make k8s-tools`")


@functools.cache
def build(kustomization: str) -> str:
    done = subprocess.run(
        [_tool("kustomize"), "build", K8S / kustomization], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"kustomize build {kustomization}:\n{done.stderr}"
    return done.stdout


def load(text: str) -> list[Doc]:
    return [d for d in _yaml().safe_load_all(text) if d]


# --- JSON schemas for kubeconform ---------------------------------------------------------------------------------


def _strict(node: Any) -> Any:
    """An OpenAPI v3 schema of a CRD as JSON schema, after kubeconform's openapi2jsonschema.py: objects with
    properties refuse others (unless the CRD preserves unknown fields), int-or-string is either, nullable adds null."""
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False) or out.get("format") == "int-or-string":
        out.pop("format", None)
        out["type"] = ["integer", "string"]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _write_crd_schemas(root: Path) -> set[str]:
    """Every CRD under var/tools/crds as <group>/<kind>_<version>.json; returns the groups."""
    groups = set()
    crds = sorted((TOOLS / "crds").glob("*/*.yaml"))
    if not crds:
        pytest.fail("no CRDs under var/tools/crds: run `make k8s-tools`")
    for path in crds:
        for crd in load(path.read_text(encoding="utf-8")):
            spec = crd["spec"]
            groups.add(spec["group"])
            for version in spec["versions"]:
                out = root / spec["group"] / f"{spec['names']['kind'].lower()}_{version['name']}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(_strict(version["schema"]["openAPIV3Schema"])), encoding="utf-8")
    return groups


def _builtin_file(doc: Doc) -> str:
    """kubeconform's name for a built-in kind's schema: <kind>-<first label of the group>-<version>.json."""
    group, _, version = doc["apiVersion"].rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{doc['kind'].lower()}{suffix}.json"


def _write_builtin_schema(name: str, root: Path) -> None:
    """The wheel's schemas point into one shared _definitions.json by an absolute URL that kubeconform would fetch:
    copy the definitions each kind needs into it instead."""
    local = TOOLS / "schemas" / "kubernetes" / f"v{KUBERNETES_VERSION}-local-strict"
    out = root / f"v{KUBERNETES_VERSION}-standalone-strict" / name
    if out.exists() or not (local / name).exists():
        return  # a CRD kind, or done
    definitions = json.loads((local / "_definitions.json").read_text(encoding="utf-8"))["$defs"]
    text = (local / name).read_text(encoding="utf-8").replace("/api/_definitions.json#/$defs/", "#/$defs/")
    ref = re.compile(r'"\$ref": "#/\$defs/([^"]+)"')
    needed: set[str] = set()
    todo = ref.findall(text)
    while todo:
        definition = todo.pop()
        if definition not in needed:
            needed.add(definition)
            todo += ref.findall(json.dumps(definitions[definition]))
    schema = json.loads(text)
    schema.pop("$id", None)
    schema["$defs"] = {k: definitions[k] for k in needed}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(schema), encoding="utf-8")


@pytest.fixture(scope="session")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("schemas")
    groups = _write_crd_schemas(root)
    assert {"kafka.strimzi.io", "keda.sh"} <= groups
    if not (TOOLS / "schemas" / "kubernetes" / f"v{KUBERNETES_VERSION}-local-strict" / "_definitions.json").exists():
        pytest.fail("the Kubernetes schemas are missing from var/tools/schemas: run `make k8s-tools`")
    return root


def kubeconform(text: str, schemas: Path, tmp: Path) -> dict[str, Any]:
    """``kubeconform -strict -summary`` on the manifests in ``text``, offline; returns its JSON report, which lists
    every resource."""
    for doc in load(text):
        _write_builtin_schema(_builtin_file(doc), schemas)
    manifest = tmp / "manifest.yaml"
    manifest.write_text(text, encoding="utf-8")
    cmd = [
        _tool("kubeconform"),
        "-strict",
        "-summary",
        "-verbose",
        "-output", "json",
        "-kubernetes-version", KUBERNETES_VERSION,
        "-schema-location", f"{schemas}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/"
                            "{{ .ResourceKind }}{{ .KindSuffix }}.json",
        "-schema-location", f"{schemas}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
        "-skip", ",".join(UNVALIDATED_KINDS),
        manifest,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    report: dict[str, Any] = json.loads(done.stdout)
    assert (done.returncode == 0) == (report["summary"]["invalid"] + report["summary"]["errors"] == 0), done.stderr
    return report


# --- the built manifests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def built(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    return request.param, load(build(request.param))


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def settings_map(docs: list[Doc]) -> dict[str, str]:
    return one(docs, "ConfigMap")["data"]


def containers(deployment: Doc) -> list[Doc]:
    return deployment["spec"]["template"]["spec"]["containers"]


def env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def role(deployment: Doc) -> str:
    return env(containers(deployment)[0])["ALARMFLOW_ROLE"]


# --- validation ---------------------------------------------------------------------------------------------------


def test_each_kustomization_builds_and_every_resource_is_valid(
    built: tuple[str, list[Doc]], schemas: Path, tmp_path: Path
) -> None:
    name, docs = built
    report = kubeconform(build(name), schemas, tmp_path)
    summary = report["summary"]
    assert summary["invalid"] == 0 and summary["errors"] == 0, json.dumps(report["resources"], indent=1)
    statuses = {(r["kind"], r["name"]): r["status"] for r in report["resources"]}
    assert len(statuses) == len(docs) == summary["valid"] + summary["skipped"]
    skipped = {kind for (kind, _), status in statuses.items() if status == "statusSkipped"}
    assert skipped == set(UNVALIDATED_KINDS), f"{name}: only the Altinity kinds go unchecked"
    valid = {kind for (kind, _), status in statuses.items() if status == "statusValid"}
    assert valid == {
        "ConfigMap", "Deployment", "PodDisruptionBudget", "NetworkPolicy", "Job",
        "Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject",
    }  # fmt: skip


def _set(doc: Doc, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    if isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


def _drop(doc: Doc, path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        doc = doc[key]
    del doc[last]


BREAKAGES = [
    # (kind, what is done, path, value or None to delete, why it is wrong)
    ("Deployment", "set", "spec.template.spec.containers.0.livenesProbe", {"periodSeconds": 5}, "misspelt field"),
    ("Deployment", "set", "spec.template.spec.containers.0.resources.limits.memory", ["1Gi"], "a list for a quantity"),
    ("PodDisruptionBudget", "set", "spec.minAvailabel", 1, "misspelt field"),
    ("ConfigMap", "set", "data.ALARMFLOW_PARTITIONS", 4, "a number where Kubernetes wants a string"),
    ("Job", "set", "spec.backoffLimit", "thirty", "a string for a count"),
    ("KafkaTopic", "set", "spec.partitions", "four", "a string for a count"),
    ("KafkaTopic", "set", "spec.replica", 3, "misspelt field"),
    ("Kafka", "set", "spec.kafka.listeners.0.type", "intranet", "not a listener type"),
    ("Kafka", "drop", "spec.kafka.listeners", None, "listeners are required"),
    ("KafkaNodePool", "drop", "spec.roles", None, "roles are required"),
    ("ScaledObject", "set", "spec.maxReplicas", 4, "misspelt field"),
    ("ScaledObject", "set", "spec.minReplicaCount", "two", "a string for a count"),
]


@pytest.mark.parametrize(
    ("kind", "action", "path", "value", "why"), BREAKAGES, ids=[f"{b[0]}: {b[4]}" for b in BREAKAGES]
)
def test_the_validator_rejects_a_broken_manifest(
    kind: str, action: str, path: str, value: Any, why: str, schemas: Path, tmp_path: Path
) -> None:
    doc = copy.deepcopy(of_kind(load(build("base")), kind)[0])
    dump = _yaml().safe_dump
    assert kubeconform(dump(doc), schemas, tmp_path)["summary"]["valid"] == 1, "the unbroken copy is valid"
    if action == "set":
        _set(doc, path, value)
    else:
        _drop(doc, path)
    report = kubeconform(dump(doc), schemas, tmp_path)
    assert [r["status"] for r in report["resources"]] == ["statusInvalid"], f"{why}: {report}"


# --- agreement with the code --------------------------------------------------------------------------------------


def test_every_topic_is_declared_with_the_settings_the_code_gives_it(built: tuple[str, list[Doc]]) -> None:
    _, docs = built
    cfg = settings_map(docs)
    prefix, app_id = cfg["ALARMFLOW_TOPIC_PREFIX"], cfg["ALARMFLOW_APP_ID"]
    partitions = int(cfg["ALARMFLOW_PARTITIONS"])
    event_topics = {f"{prefix}.{suffix}" for suffix in TOPIC_SUFFIXES}
    changelogs = {f"{app_id}-{agent}-state-changelog" for agent in INPUTS}  # Faust: <app id>-<table>-changelog
    leader = f"{app_id}-__assignor-__leader"  # Faust's LeaderAssignor
    topics = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic")}
    assert set(topics) == event_topics | changelogs | {leader}
    kafka = one(docs, "Kafka")["metadata"]["name"]
    for name, topic in topics.items():
        spec, config = topic["spec"], {k: str(v) for k, v in topic["spec"]["config"].items()}
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka
        assert (spec["replicas"], config["min.insync.replicas"]) == (3, "2"), name
        if name in event_topics:
            assert config.items() >= _topic_config(name).items(), name
        if name in changelogs:
            assert config["cleanup.policy"] == "compact", name
        expected = 1 if name == leader else partitions
        assert spec["partitions"] == expected, f"{name}: {spec['partitions']}, ALARMFLOW_PARTITIONS={partitions}"
        assert (topic["metadata"]["labels"].get("alarmflow.io/partitioned") == "true") == (name != leader)


class _Waited(Exception):
    """The wait-for-topics script went to sleep: a topic it wants was missing."""


def test_the_workers_wait_for_every_declared_topic_before_they_start(
    built: tuple[str, list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, docs = built
    declared = {t["spec"]["topicName"] for t in of_kind(docs, "KafkaTopic")}
    inits = [d["spec"]["template"]["spec"]["initContainers"] for d in of_kind(docs, "Deployment")]
    assert all(len(init) == 1 and init[0]["name"] == "wait-for-topics" for init in inits)
    (script,) = {init[0]["args"][0] for init in inits}
    for name, value in settings_map(docs).items():
        monkeypatch.setenv(name, value)

    def wait_with(topics: set[str]) -> None:
        async def list_topics(bootstrap: str) -> list[str]:
            assert bootstrap == settings_map(docs)["ALARMFLOW_KAFKA_BOOTSTRAP"]
            return sorted(topics)

        def sleep(seconds: float) -> None:
            raise _Waited

        monkeypatch.setattr(kafka_admin, "list_topics", list_topics)
        monkeypatch.setattr(time, "sleep", sleep)
        exec(compile(script, "wait-for-topics", "exec"), {})

    wait_with(declared)  # returns at once
    for topic in sorted(declared):
        with pytest.raises(_Waited):
            wait_with(declared - {topic})


def test_kafka_replicates_three_ways_and_the_workers_find_it(built: tuple[str, list[Doc]]) -> None:
    _, docs = built
    kafka = one(docs, "Kafka")
    config = kafka["spec"]["kafka"]["config"]
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == (3, 2)
    assert config["auto.create.topics.enable"] is False
    pools = {p["metadata"]["name"]: p["spec"] for p in of_kind(docs, "KafkaNodePool")}
    assert sum(p["replicas"] for p in pools.values() if "broker" in p["roles"]) >= 3
    controllers = sum(p["replicas"] for p in pools.values() if "controller" in p["roles"])
    assert controllers >= 3 and controllers % 2 == 1, "a KRaft quorum"
    (plain,) = [x for x in kafka["spec"]["kafka"]["listeners"] if not x["tls"]]
    namespace = kafka["metadata"]["namespace"]
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap.{namespace}.svc:{plain['port']}"
    assert settings_map(docs)["ALARMFLOW_KAFKA_BOOTSTRAP"] == bootstrap


def test_autoscaling_follows_the_consumer_groups_and_stops_at_the_partitions(built: tuple[str, list[Doc]]) -> None:
    _, docs = built
    cfg = settings_map(docs)
    settings = Settings.from_env({**cfg, "ALARMFLOW_ROLE": "agents"})  # the shared ConfigMap; no DSN in it
    groups = {"agents": settings.app_id, "projector": f"{settings.app_id}-projector"}
    assert set(settings.consumer_groups()) == set(groups.values())
    kafka_version = one(docs, "Kafka")["spec"]["kafka"]["version"]
    scaled = of_kind(docs, "ScaledObject")
    assert len(scaled) == len(of_kind(docs, "Deployment")) == 2
    for so in scaled:
        spec = so["spec"]
        target = one(docs, "Deployment", spec["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], "the ScaledObject owns the replica count"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= settings.partitions
        assert spec["minReplicaCount"] <= spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
        (trigger,) = spec["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["bootstrapServers"] == settings.kafka_bootstrap
        assert meta["consumerGroup"] == groups[role(target)]
        assert meta["version"] == kafka_version
        assert meta["offsetResetPolicy"] == "earliest"  # as the workers' consumers
        assert int(meta["lagThreshold"]) > 0


def test_the_workers_run_by_role_with_probes_on_a_route_they_serve(
    built: tuple[str, list[Doc]], tmp_path: Path
) -> None:
    _, docs = built
    cfg = settings_map(docs)
    settings = Settings.from_env({**cfg, "ALARMFLOW_VAR_DIR": str(tmp_path), "ALARMFLOW_ROLE": "agents"})
    known = set(env_names())
    assert set(cfg) <= known, "a setting the workers do not read"
    assert settings.web_bind == "0.0.0.0", "the kubelet probes the pod's address"
    served = _routes_served(settings)
    deployments = of_kind(docs, "Deployment")
    assert sorted(role(d) for d in deployments) == ["agents", "projector"]
    budgets = of_kind(docs, "PodDisruptionBudget")
    for deployment in deployments:
        (container,) = containers(deployment)
        assert {n for n in env(container) if n.startswith("ALARMFLOW_")} <= known
        literal = {k: v for k, v in env(container).items() if isinstance(v, str)}
        Settings.from_env({**cfg, **literal, "ALARMFLOW_VAR_DIR": str(tmp_path)})  # each role's settings start
        assert container["envFrom"] == [{"configMapRef": {"name": one(docs, "ConfigMap")["metadata"]["name"]}}]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert ports[get["port"]] == settings.web_port
            assert get["path"] in served, f"{probe} {get['path']} is not a route the worker serves: {served}"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()], "no PDB"
        assert _isolated(labels, of_kind(docs, "NetworkPolicy")), "the board would be open to every pod"


def _isolated(labels: dict[str, str], policies: list[Doc]) -> bool:
    """A policy selects the pod for ingress and admits nothing (the pod's node, the probes, always gets through)."""
    for policy in policies:
        spec = policy["spec"]
        selector = spec["podSelector"]
        if (
            selector.get("matchLabels", {}).items() <= labels.items()
            and all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))
            and spec["policyTypes"] == ["Ingress"]
            and not spec.get("ingress")
        ):
            return True
    return False


def _routes_served(settings: Settings) -> set[str]:
    """The GET routes of the Faust app the worker builds (streams/app.py), from the blueprints it enables."""
    from streams.app import faust_app

    routes = set()
    for prefix, named in faust_app(settings).web._enabled_blueprints():
        blueprint = named
        if isinstance(named, str):
            module, _, attr = named.partition(":") if ":" in named else named.rpartition(".")
            blueprint = getattr(importlib.import_module(module), attr)
        routes |= {prefix + r.uri for r in blueprint.routes}
    return routes


def test_the_phone_key_and_the_clickhouse_password_come_from_secrets_not_from_the_repo(
    built: tuple[str, list[Doc]],
) -> None:
    _, docs = built
    assert not of_kind(docs, "Secret"), "the platform team creates the Secrets (deploy/README.md)"
    key_file = Path(settings_map(docs)["ALARMFLOW_PHONE_HMAC_KEY_FILE"])
    for deployment in of_kind(docs, "Deployment"):
        (container,) = containers(deployment)
        assert "ALARMFLOW_PHONE_HMAC_KEY" not in env(container)
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == key_file.parent]
        assert volumes[mount["name"]]["secret"]["secretName"] == "alarmflow-phone-hmac"
    for text in (p.read_text(encoding="utf-8") for p in K8S.rglob("*") if p.suffix in {".yaml", ".env"}):
        assert not re.search(r"(?i)(hmac_key|password)\s*[=:]\s*['\"]?[0-9a-f]{16,}", text)


def test_clickhouse_is_two_shards_of_two_replicas_in_the_cluster_the_workers_name(
    built: tuple[str, list[Doc]],
) -> None:
    _, docs = built
    chi, chk = one(docs, "ClickHouseInstallation"), one(docs, "ClickHouseKeeperInstallation")
    (cluster,) = chi["spec"]["configuration"]["clusters"]
    assert cluster["name"] == settings_map(docs)["ALARMFLOW_CLICKHOUSE_CLUSTER"] == "alarmflow"
    assert (cluster["layout"]["shardsCount"], cluster["layout"]["replicasCount"]) == (2, 2)
    (keeper,) = chk["spec"]["configuration"]["clusters"]
    assert keeper["layout"]["replicasCount"] == 3
    assert chi["spec"]["configuration"]["zookeeper"]["nodes"] == [
        {"host": f"keeper-{chk['metadata']['name']}", "port": 2181}  # the operator's Service for the Keeper
    ]
    (projector,) = [d for d in of_kind(docs, "Deployment") if role(d) == "projector"]
    dsn = urlsplit(env(containers(projector)[0])["ALARMFLOW_CLICKHOUSE_DSN"])
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("http", f"clickhouse-{chi['metadata']['name']}", 8123)
    assert (dsn.username, dsn.password) == ("alarmflow", "$(CLICKHOUSE_PASSWORD)")
    assert "alarmflow/password" in chi["spec"]["configuration"]["users"]
    database = dsn.path.strip("/")
    (job,) = of_kind(docs, "Job")
    command = " ".join(containers(job)[0]["command"])
    assert f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster['name']}" in command
    assert f"--host=clickhouse-{chi['metadata']['name']}" in command


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def test_every_pod_runs_unprivileged_with_bounded_resources(built: tuple[str, list[Doc]]) -> None:
    _, docs = built
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            resources = container["resources"]
            assert _bytes(resources["limits"]["memory"]) >= _bytes(resources["requests"]["memory"])
    images = [n["image"] for d in docs for n in _walk(d) if isinstance(n, dict) and isinstance(n.get("image"), str)]
    assert images and all(":" in image.rsplit("/", 1)[-1] for image in images if "alarmflow" not in image), images


def _bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return float(quantity[: -len(unit)]) * factor
    return float(quantity)
