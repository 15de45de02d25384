#!/usr/bin/env python3
"""Checks the Helm chart without a cluster: lints it, renders it for each values file, validates
every rendered object against the Kubernetes 1.30 schemas, and checks the rules the chart
promises (probes, resources and a locked-down security context on every container; no secret
in a ConfigMap; only the gateway and the web app reachable from outside the release).

    tools/check-chart            # installs what it needs, then runs this

Exits non-zero, naming each problem, when a rule is broken.
"""

import json
import re
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
CHART = HERE / "wallet-platform"
REPOSITORY = HERE.parent.parent
KUBERNETES = "1.30.0"
# Custom resources of the operators the chart relies on: no schema in kubernetes-validate.
OPERATOR_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
    ("rabbitmq.com/v1beta1", "User"),
    ("rabbitmq.com/v1beta1", "Permission"),
    ("rabbitmq.com/v1beta1", "Policy"),
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|INTERNAL_API_TOKEN|ENCRYPTION_KEY|_URL$")
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")
PROGRAMS = {"gateway", "auth-service", "wallet-service", "statement-service", "order-service", "web"}
# The entry points: the API and the web app for people.
PUBLIC = {"gateway", "web"}


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (YAML keeps the last)."""


def _mapping(loader, node, deep=False):
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def render(values_file):
    values = yaml.safe_load(values_file.read_text()) if values_file else None
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBERNETES}")
    problems = [f"lint: {m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    problems += [f"lint: {error}" for error in report.get("errors") or []]
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name="wallet", namespace="wallet", is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [(path, doc) for doc in yaml.load_all(text, Loader=StrictLoader) if doc]
    return objects, problems


def validate(path, obj):
    kind = (obj.get("apiVersion"), obj.get("kind"))
    if kind in OPERATOR_KINDS:
        return []
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{path}: {kind[1]} {obj['metadata']['name']}: {error.message}"]
    return []


def pod_specs(obj):
    if obj["kind"] == "Deployment":
        yield obj["metadata"]["name"], obj["spec"]["template"]["spec"], True
    elif obj["kind"] == "Pod":
        # A `helm test` hook runs once: it needs no probes.
        yield obj["metadata"]["name"], obj["spec"], False


def check_pods(obj):
    problems = []
    for name, spec, long_running in pod_specs(obj):
        pod_context = spec.get("securityContext", {})
        if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: the pod has no RuntimeDefault seccomp profile")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token it does not use")
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            if long_running:
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        problems.append(f"{where}: no {probe}")
            resources = container.get("resources", {})
            if not resources.get("requests") or not resources.get("limits", {}).get("memory"):
                problems.append(f"{where}: resources must set requests and a memory limit")
            context = container.get("securityContext", {})
            expected = {
                "runAsNonRoot": True,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
            }
            for key, value in expected.items():
                if context.get(key) is not value:
                    problems.append(f"{where}: securityContext.{key} must be {value}")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: must drop all capabilities")
            for variable in container.get("env", []):
                if SECRET_NAME.search(variable["name"]) and "value" in variable:
                    value = variable["value"]
                    # A URL built from a secret variable ($(...)) holds no secret itself,
                    # nor does one without credentials (the web app's GATEWAY_URL).
                    plain_url = variable["name"].endswith("_URL") and not CREDENTIALS_IN_URL.search(value)
                    if "$(" not in value and not plain_url:
                        problems.append(f"{where}: {variable['name']} is a literal secret")
    return problems


def check_config_maps(obj):
    if obj["kind"] != "ConfigMap":
        return []
    problems = []
    for key, value in (obj.get("data") or {}).items():
        if SECRET_NAME.search(key) or CREDENTIALS_IN_URL.search(str(value)):
            problems.append(f"ConfigMap {obj['metadata']['name']}: {key} looks like a secret")
    return problems


def check_exposure(objects):
    """Only the gateway and the web app are reachable from outside the release."""
    problems = []
    for _, obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "Service" and obj["spec"].get("type", "ClusterIP") != "ClusterIP":
            problems.append(f"Service {name}: type {obj['spec']['type']} exposes it")
        if kind == "Ingress":
            for rule in obj["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    target = path["backend"]["service"]["name"]
                    if not target.endswith(("-gateway", "-web")):
                        problems.append(f"Ingress {name}: routes to {target}")
        if kind == "NetworkPolicy":
            program = obj["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in obj["spec"].get("ingress", []):
                sources = rule.get("from")
                if program not in PUBLIC and not sources:
                    problems.append(f"NetworkPolicy {name}: {program} open to everyone")
                for source in sources or []:
                    caller = source.get("podSelector", {}).get("matchLabels", {})
                    if caller.get("app.kubernetes.io/name") not in PROGRAMS:
                        problems.append(f"NetworkPolicy {name}: {program} open to {source}")
    deployments = {o["metadata"]["name"] for _, o in objects if o["kind"] == "Deployment"}
    policies = {o["metadata"]["name"] for _, o in objects if o["kind"] == "NetworkPolicy"}
    if policies and deployments - policies:
        problems.append(f"no NetworkPolicy for {sorted(deployments - policies)}")
    return problems


def check_publisher_permissions():
    """The chart's broker permissions for other systems are those compose uses."""
    file = REPOSITORY / "deploy" / "rabbitmq" / "publisher-permissions.json"
    if not file.exists():
        return []
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = values["rabbitmq"]["publisherPermissions"]
    compose = json.loads(file.read_text())
    if chart != compose:
        return [f"rabbitmq.publisherPermissions {chart} differ from {file.name} {compose}"]
    return []


def main():
    problems = check_publisher_permissions()
    for values_file in (None, CHART / "values-production.yaml"):
        label = values_file.name if values_file else "default values"
        objects, found = render(values_file)
        for path, obj in objects:
            found += validate(path, obj) + check_pods(obj) + check_config_maps(obj)
        found += check_exposure(objects)
        kinds = sorted({o["kind"] for _, o in objects})
        print(f"{label}: {len(objects)} objects ({', '.join(kinds)}), {len(found)} problems")
        problems += [f"{label}: {problem}" for problem in found]
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
