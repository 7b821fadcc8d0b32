#!/usr/bin/env python3
"""Offline checks of the Dockerfile, .dockerignore and deploy/docker-compose.yml (no Docker engine
here or in CI; deploy/check_runtime_image.sh proves the runtime stage's packages separately):

  Dockerfile: two stages on Debian bookworm; the build stage installs with deploy/setup.sh
  --build-only; the runtime stage is debian:bookworm-slim, installs with
  deploy/docker/install-runtime.sh from deploy/runtime-packages.txt (the list the runtime check
  reads), copies the three binaries from the build stage and the demo models to /models, runs as
  a numeric non-root user, exposes 8500 and 8502, and has an exec-form ENTRYPOINT (SIGTERM reaches
  octet-server); every file it COPYs from the context exists and is not excluded by .dockerignore.
  Compose: every mounted file exists, the server runs read-only with /tmp as tmpfs, no
  capabilities, a stop grace period longer than the server's drain, the published ports, and the
  Prometheus/Grafana wiring points at services and files that exist.

Usage: container_check.py [--allow-missing-models]
  --allow-missing-models: deploy/models (the committed demo repository the image bundles) may be
  absent yet; reported as PENDING instead of failing. CMake passes it only while it is absent.
"""
import fnmatch
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ALLOW_MISSING_MODELS = "--allow-missing-models" in sys.argv[1:]
failures = []


def check(cond, msg):
    if cond:
        print(f"  ok    {msg}")
    else:
        failures.append(msg)
        print(f"  FAIL  {msg}")


def dockerfile_instructions(text):
    """[(stage_index, INSTRUCTION, args)] with line continuations joined and comments dropped."""
    out, stage, buf = [], -1, ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if line.rstrip().endswith("\\"):
            continue
        instr, _, args = buf.strip().partition(" ")
        buf = ""
        if instr.upper() == "FROM":
            stage += 1
        out.append((stage, instr.upper(), args.strip()))
    return out


def ignored(path, patterns):
    """Whether .dockerignore excludes a context path (last matching pattern wins)."""
    result = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes):
            result = not neg
    return result


def check_dockerfile():
    print("== Dockerfile")
    ins = dockerfile_instructions((REPO / "Dockerfile").read_text())
    patterns = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    froms = [a for s, i, a in ins if i == "FROM"]
    check(len(froms) == 2 and froms[0].startswith("debian:bookworm ") and
          froms[1].startswith("debian:bookworm-slim"),
          f"two stages, debian:bookworm then debian:bookworm-slim ({froms})")
    build = [(i, a) for s, i, a in ins if s == 0]
    runtime = [(i, a) for s, i, a in ins if s == 1]
    check(any(i == "RUN" and "deploy/setup.sh --build-only" in a for i, a in build),
          "build stage installs its packages with deploy/setup.sh --build-only")
    check(any(i == "RUN" and "install-runtime.sh" in a and "runtime-packages.txt" in a
              for i, a in runtime),
          "runtime stage installs deploy/runtime-packages.txt with install-runtime.sh")
    copies = [a for i, a in runtime if i == "COPY"]
    check(any("--from=build" in a and a.split()[-1].startswith("/usr/local/bin") for a in copies),
          "runtime stage copies the binaries from the build stage to /usr/local/bin")
    build_run = " ".join(a for i, a in build if i == "RUN")
    for binary in ("server/octet-server", "core/octet", "deploy/bench/octet-bench"):
        check(f"build/release/{binary}" in build_run, f"build stage collects {binary}")
    check(any(a.split()[-2:] == ["deploy/models", "/models"] for a in copies),
          "runtime stage bundles deploy/models as /models")
    users = [a for i, a in runtime if i == "USER"]
    check(bool(users) and re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", users[-1]) is not None,
          f"runs as a numeric non-root user ({users[-1] if users else 'none'})")
    exposed = " ".join(a for i, a in runtime if i == "EXPOSE").split()
    check({"8500", "8502"} <= set(exposed), f"exposes 8500 and 8502 ({exposed})")
    entry = [a for i, a in runtime if i == "ENTRYPOINT"]
    try:
        form = json.loads(entry[-1]) if entry else None
    except json.JSONDecodeError:
        form = None
    check(isinstance(form, list) and form and form[0] == "/usr/local/bin/octet-server",
          f"exec-form ENTRYPOINT runs /usr/local/bin/octet-server ({entry})")
    env = " ".join(a for i, a in runtime if i == "ENV")
    check("OMP_WAIT_POLICY=PASSIVE" in env and "OCTET_MODEL_REPOSITORY=/models" in env,
          "runtime ENV sets OMP_WAIT_POLICY=PASSIVE and OCTET_MODEL_REPOSITORY=/models")
    check(not any(i in ("VOLUME",) for i, _ in runtime),
          "no VOLUME (it would make a writable anonymous volume next to the read-only root)")
    for stage_ins in (build, runtime):
        for i, a in stage_ins:
            if i != "COPY" or "--from=" in a:
                continue
            srcs = [s for s in a.split()[:-1] if not s.startswith("--")]
            for src in srcs:
                if src == ".":
                    continue
                if src == "deploy/models" and not (REPO / src).exists() and ALLOW_MISSING_MODELS:
                    print("  PENDING deploy/models is not committed yet: the image cannot be built "
                          "until it is")
                    continue
                check((REPO / src).exists() and not ignored(src, patterns),
                      f"COPY source {src} exists and is in the build context")
    for path in ("build/release/x", ".git/HEAD", "deploy/bench/node_modules/x"):
        check(ignored(path, patterns), f".dockerignore keeps {path.split('/x')[0]} out of the context")
    for path in ("deploy/models/fashion_mlp/1/model.onnx", "server/main.cc", "deploy/setup.sh"):
        check(not ignored(path, patterns), f".dockerignore keeps {path} in the context")


def check_compose():
    print("== deploy/docker-compose.yml")
    deploy = REPO / "deploy"
    compose = yaml.safe_load((deploy / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            if host.startswith("."):
                check((deploy / host).exists(), f"{name}: mounted {host} exists")
        for dep in svc.get("depends_on", []):
            check(dep in services, f"{name}: depends_on {dep} is a service")
    octet = services["octet"]
    check((deploy / octet["build"]["context"] / octet["build"]["dockerfile"]).exists(),
          "octet builds the top-level Dockerfile")
    check(octet.get("read_only") is True, "octet: read-only root filesystem")
    check(any(t.split(":")[0] == "/tmp" for t in octet.get("tmpfs", [])), "octet: /tmp is a tmpfs")
    check("ALL" in octet.get("cap_drop", []), "octet: drops all capabilities")
    grace = re.fullmatch(r"(\d+)s", str(octet.get("stop_grace_period", "")))
    check(grace is not None and int(grace.group(1)) > 20,
          "octet: stop_grace_period longer than the default --drain_grace_seconds=20")
    published = {p.split(":")[-1] for p in octet.get("ports", [])}
    check({"8500", "8502"} <= published, f"octet publishes 8500 and 8502 ({sorted(published)})")
    prom_cfg = yaml.safe_load((deploy / "prometheus/prometheus-compose.yml").read_text())
    targets = [t for sc in prom_cfg["scrape_configs"] for s in sc["static_configs"] for t in s["targets"]]
    check(targets == ["octet:8502"], f"Prometheus scrapes the octet service's metrics port ({targets})")
    ds = yaml.safe_load((deploy / "grafana/provisioning/datasources/prometheus.yml").read_text())
    check(ds["datasources"][0]["url"] == "http://prometheus:9090",
          "Grafana's data source is the prometheus service")
    provider = yaml.safe_load((deploy / "grafana/provisioning/dashboards/octet.yml").read_text())
    dash_dir = provider["providers"][0]["options"]["path"]
    mounted = [v.split(":")[1] for v in services["grafana"]["volumes"]]
    check(any(m.startswith(dash_dir + "/") and m.endswith("octet-dashboard.json") for m in mounted),
          "Grafana's dashboard provider path holds the mounted octet dashboard")


def main():
    check_dockerfile()
    check_compose()
    print(f"container_check: {len(failures)} failure(s)" if failures else
          "container_check: Dockerfile and compose checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
