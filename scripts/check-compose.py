"""Checks docker-compose.yml's structure, since no Docker engine runs on the
build machines: the services, Redis persistence and health checks, start-up
order, and a worker service that scales with `--scale worker=N`.
Run by scripts/test with the test venv's Python (PyYAML)."""

import sys

import yaml


def fail(message):
    print(f"docker-compose.yml: {message}")
    sys.exit(1)


with open(sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml") as f:
    compose = yaml.safe_load(f)

services = compose.get("services") or {}
for name in ("redis", "api", "worker"):
    if name not in services:
        fail(f"service `{name}` is missing")

redis = services["redis"]
command = " ".join(redis.get("command") or [])
if "--appendonly yes" not in command or "--appendfsync everysec" not in command:
    fail("redis must run with --appendonly yes --appendfsync everysec")
if not any(str(v).endswith(":/data") for v in redis.get("volumes") or []):
    fail("redis needs a volume for /data")
if "test" not in (redis.get("healthcheck") or {}):
    fail("redis needs a health check")

for name in ("api", "worker"):
    service = services[name]
    depends = (service.get("depends_on") or {}).get("redis") or {}
    if depends.get("condition") != "service_healthy":
        fail(f"{name} must wait for redis to be healthy")
    env = service.get("environment") or {}
    if "HOOKFLEET_REDIS_URL" not in env:
        fail(f"{name} needs HOOKFLEET_REDIS_URL")
    if "test" not in (service.get("healthcheck") or {}):
        fail(f"{name} needs a health check")

api = services["api"]
if not api.get("ports"):
    fail("api must publish its port")

worker = services["worker"]
if "container_name" in worker or worker.get("ports"):
    fail("worker must have no fixed container name or host port, so replicas don't clash")
if ((worker.get("deploy") or {}).get("replicas") or 0) < 2:
    fail("worker should start with deploy.replicas: 2")
if worker.get("command") != ["hookfleet-worker"] or api.get("command") != ["hookfleet-api"]:
    fail("api and worker must run hookfleet-api and hookfleet-worker")

print("docker-compose.yml: ok")
