"""Structural checks of the deployment files that a schema cannot express.

Run by scripts/check-deploy.sh. Exits non-zero with one line per problem.
"""
import re
import sys
from pathlib import Path

import yaml

root = Path(__file__).resolve().parent.parent
problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)


base = yaml.safe_load((root / "docker-compose.yml").read_text())
demo = yaml.safe_load((root / "docker-compose.demo.yml").read_text())
services = base.get("services", {})

check(sorted(services) == ["postgres", "web", "worker"],
      f"docker-compose.yml must have exactly postgres, web and worker, has {sorted(services)}")
pg = services.get("postgres", {})
check(pg.get("image") == "${POSTGRES_IMAGE:-postgres:16}",
      "postgres must use image ${POSTGRES_IMAGE:-postgres:16} (postgres:16 unless overridden)")
check("healthcheck" in pg, "postgres needs a healthcheck")
check(any(str(v).startswith("pgdata:") for v in pg.get("volumes", [])), "postgres needs the named volume pgdata")
check(any("docker-entrypoint-initdb.d" in str(v) for v in pg.get("volumes", [])), "postgres must apply db/init on first start")
check("pgdata" in (base.get("volumes") or {}), "the pgdata volume must be declared")
for name, svc in services.items():
    check("restart" in svc, f"{name} needs a restart policy")
    if name != "web":
        check("ports" not in svc, f"{name} must publish no port (only web does)")
check("ports" in services.get("web", {}), "web must publish its port")
for name in ("web", "worker"):
    deps = services.get(name, {}).get("depends_on", {})
    check(isinstance(deps, dict) and deps.get("postgres", {}).get("condition") == "service_healthy",
          f"{name} must wait for a healthy postgres")
    check(services.get(name, {}).get("build", {}).get("target") == name, f"{name} must build the Dockerfile target {name}")
check(set(demo.get("services", {})) == {"sim", "web", "worker"}, "the demo overlay adds sim and only adjusts web and worker")

# Every variable the compose files read is documented in .env.example, and no secret has a value.
used = set(re.findall(r"\$\{([A-Z0-9_]+)", (root / "docker-compose.yml").read_text()))
example = {}
for line in (root / ".env.example").read_text().splitlines():
    if line and not line.startswith("#") and "=" in line:
        k, v = line.split("=", 1)
        example[k.strip()] = v.strip()
for var in sorted(used - set(example)):
    problems.append(f".env.example does not document {var}")
for secret in ("POSTGRES_PASSWORD", "ENTRA_CLIENT_SECRET"):
    check(example.get(secret) == "", f".env.example must leave {secret} empty")
demo_env = dict(line.split("=", 1) for line in (root / ".env.demo").read_text().splitlines()
                if line and not line.startswith("#"))
for var in sorted(v for v in used if ":?" in (root / "docker-compose.yml").read_text().split("${" + v, 1)[1][:3]):
    check(var in demo_env, f".env.demo must set the required {var}")

# App images run as an unprivileged user and have healthchecks.
dockerfile = (root / "Dockerfile").read_text()
stages = {}
current = None
for line in dockerfile.splitlines():
    m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
    if m:
        current = m.group(1)
        stages[current] = ""
    elif current:
        stages[current] += line + "\n"
check(re.search(r"^USER\s+(?!0\b|root\b)\S+", stages.get("runtime", ""), re.M) is not None,
      "the runtime stage must switch to a non-root USER")
for target in ("web", "worker", "sim"):
    check(target in stages, f"Dockerfile needs a target {target}")
    check("HEALTHCHECK" in stages.get(target, ""), f"Dockerfile target {target} needs a HEALTHCHECK")
    check(re.search(r"^USER\s+(0|root)\b", stages.get(target, ""), re.M) is None, f"target {target} must not run as root")

for p in problems:
    print(f"check-deploy: {p}")
sys.exit(1 if problems else 0)
