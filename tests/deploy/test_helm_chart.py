"""The Helm chart, rendered by the real Helm engine (helm-python-sdk, offline) and checked like a cluster would."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from recovery.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "cart-recovery"
KUBERNETES = "1.31.0"
CRDS = {
    "ScaledObject",
    "ServiceMonitor",
    "PrometheusRule",
}  # kubernetes-validate has no schema for them: fields asserted below

SPLIT = {
    "roles": {
        "split": True,
        "scheduler": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}},
        "api": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 9}},
    },
    "ingress": {"enabled": True, "host": "shop-recovery.example.com", "tls": {"secretName": "recovery-tls"}},
    "purge": {"enabled": True, "days": 90},
}
KEDA = {
    "roles": {"split": True},
    "keda": {"enabled": True, "lagThreshold": 500, "authenticationRef": "kafka-sasl"},
    "kafka": {"partitions": 12},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
}
# Consumers on lag and schedulers on their backlog, both through KEDA.
BACKLOG = {
    "roles": {"split": True},
    "keda": {
        "enabled": True,
        "scheduler": {
            "enabled": True,
            "serverAddress": "http://prometheus.monitoring:9090",
            "maxReplicaCount": 8,
            "dueStepsPerReplica": 300,
            "oldestDueAgeSeconds": 45,
            "authenticationRef": "prometheus-token",
        },
    },
    "serviceMonitor": {"enabled": True},
}
EXISTING = {
    "secrets": {"existingSecret": "shop-secrets", "keys": {"databaseUrl": "pg-url", "linkSecret": "links"}},
    "config": {"existingConfigMap": "shop-recovery-config", "templatesFromImage": True},
}
PRODUCTION = {
    "roles": {
        "split": True,
        "scheduler": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}},
        "api": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 10}},
    },
    "kafka": {
        "partitions": 4,
        "replicationFactor": 3,
        "security": {
            "protocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
            "tls": {"existingSecret": "kafka-cluster-ca", "caKey": "ca.crt"},
        },
    },
    "serviceAccount": {"create": True, "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/recovery"}},
    "serviceMonitor": {"enabled": True, "podTargetLabels": ["team"]},
    "prometheusRule": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
    "networkPolicy": {"enabled": True, "from": [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}]},
    "extraEnvVars": [{"name": "TZ", "value": "Europe/Paris"}],
    "extraEnvVarsSecret": "shop-extra-env",
    "extraVolumes": [{"name": "pg-ca", "secret": {"secretName": "pg-ca"}}],
    "extraVolumeMounts": [{"name": "pg-ca", "mountPath": "/etc/pg-ca", "readOnly": True}],
    "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["true"]}],
    "sidecars": [{"name": "proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11.0"}],
}
VALUE_SETS: dict[str, dict[str, Any] | None] = {
    "defaults": None,
    "split+autoscaling": SPLIT,
    "keda": KEDA,
    "keda+scheduler backlog": BACKLOG,
    "existing": EXISTING,
    "production": PRODUCTION,
}

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> helm.Chart:
    return helm.Chart.load(str(CHART))


def render(chart: helm.Chart, values: dict[str, Any] | None) -> list[Manifest]:
    """Every manifest a `helm install shop` would apply (NOTES.txt aside)."""
    rendered = chart.render(values, name="shop", namespace="recovery", is_install=True)
    docs: list[Manifest] = []
    for path, text in rendered.items():
        if not path.endswith("NOTES.txt"):
            docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_specs(docs: list[Manifest]) -> list[Manifest]:
    specs = [doc["spec"]["template"]["spec"] for doc in docs if doc["kind"] in ("Deployment", "Job")]
    return specs + [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"] for doc in of_kind(docs, "CronJob")]


def own(spec: Manifest) -> list[Manifest]:
    """The chart's own containers (the operator's sidecars are theirs to secure)."""
    return [c for c in spec["containers"] if c["image"].startswith("ghcr.io/cart-recovery/cart-recovery:")]


def test_lint_finds_no_error() -> None:
    for values in VALUE_SETS.values():
        report = helm.lint(str(CHART), values, kube_version=f"v{KUBERNETES}")
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 3] == []


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_manifest_passes_strict_kubernetes_validation(chart: helm.Chart, name: str) -> None:
    docs = render(chart, VALUE_SETS[name])
    for doc in docs:
        if doc["kind"] in CRDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises ValidationError with the path


@pytest.mark.parametrize("name", VALUE_SETS)
def test_probes_hit_health_and_readiness_on_the_http_port(chart: helm.Chart, name: str) -> None:
    for deployment in of_kind(render(chart, VALUE_SETS[name]), "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["name"] == "recovery"
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"http": 8080}
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["RECOVERY_HTTP__PORT"] == "8080" and env["RECOVERY_HTTP__HOST"] == "0.0.0.0"
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pods_run_as_non_root_on_a_read_only_root_filesystem(chart: helm.Chart, name: str) -> None:
    for spec in pod_specs(render(chart, VALUE_SETS[name])):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        for container in own(spec):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            volumes = {volume["name"]: volume for volume in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]  # temporary files go to a writable emptyDir


@pytest.mark.parametrize("name", VALUE_SETS)
def test_no_secret_value_is_inlined(chart: helm.Chart, name: str) -> None:
    docs = render(chart, VALUE_SETS[name])
    assert of_kind(docs, "Secret") == []
    secret = (VALUE_SETS[name] or {}).get("secrets", {}).get("existingSecret", "shop-cart-recovery")
    for spec in pod_specs(docs):
        for container in own(spec):
            sensitive = [
                item
                for item in container.get("env", [])
                if re.search(r"URL$|SECRET|TOKEN|PASSWORD|USERNAME|SID", item["name"])
            ]
            assert {item["name"] for item in sensitive} >= {"RECOVERY_DATABASE__URL"}
            for item in sensitive:
                assert "value" not in item, item["name"]
                assert item["valueFrom"]["secretKeyRef"]["name"] == secret
    for config_map in of_kind(docs, "ConfigMap"):
        settings = yaml.safe_load(config_map["data"].get("recovery.yaml", "{}"))
        assert "database" not in settings and "link_secret" not in settings.get("security", {})


def secret_settings(model: type[BaseModel], prefix: str = "RECOVERY_") -> set[str]:
    """The environment variable of every setting that holds a credential (a secret, token or password)."""
    found = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found |= secret_settings(field.annotation, env + "__")
        elif re.search(r"(secret|token|password)s?$", name):
            found.add(env)
    return found


def test_every_credential_setting_can_come_from_the_secret(chart: helm.Chart) -> None:
    """A deployment can set every secret, token and password from the Secret, none inlined in the ConfigMap:
    a credential the chart cannot pass (the platforms' webhook secrets were missing) turns a feature off."""
    docs = render(chart, EXISTING)
    (deployment,) = of_kind(docs, "Deployment")
    refs = {
        item["name"] for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"] if "valueFrom" in item
    }
    wanted = secret_settings(Settings)
    assert "RECOVERY_INGEST__STRIPE__SECRET" in wanted and "RECOVERY_SECURITY__API_TOKENS" in wanted
    assert wanted - refs == set()


def test_existing_secret_keys_are_the_ones_named_in_values(chart: helm.Chart) -> None:
    docs = render(chart, EXISTING)
    (deployment,) = of_kind(docs, "Deployment")
    refs = {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in item
    }
    assert refs["RECOVERY_DATABASE__URL"] == {"name": "shop-secrets", "key": "pg-url"}
    assert refs["RECOVERY_SECURITY__LINK_SECRET"] == {"name": "shop-secrets", "key": "links"}
    assert refs["RECOVERY_CHANNELS__SMS__AUTH_TOKEN"]["optional"] is True
    assert of_kind(docs, "ConfigMap") == []  # the shop's own ConfigMap, templates from the image
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": "shop-recovery-config"}} in volumes


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_migration_hook_runs_before_the_deployments_change(chart: helm.Chart, name: str) -> None:
    docs = render(chart, VALUE_SETS[name])
    (job,) = of_kind(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    for doc in docs:
        if doc is not job:  # everything else is a normal resource, applied only after the hook succeeded
            assert "helm.sh/hook" not in (doc["metadata"].get("annotations") or {}), doc["kind"]


def test_default_is_one_deployment_running_every_role(chart: helm.Chart) -> None:
    docs = render(chart, None)
    (deployment,) = of_kind(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["template"]["spec"]["containers"][0]["args"][:3] == ["run", "--role", "all"]
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    (service,) = of_kind(docs, "Service")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "all"
    assert len(of_kind(docs, "PodDisruptionBudget")) == 1
    assert of_kind(docs, "HorizontalPodAutoscaler") == of_kind(docs, "ScaledObject") == []


def test_split_roles_scale_apart(chart: helm.Chart) -> None:
    docs = render(chart, SPLIT)
    roles = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"][2]
        for d in of_kind(docs, "Deployment")
    }
    assert roles == {
        "shop-cart-recovery-consumer": "consumer",
        "shop-cart-recovery-scheduler": "scheduler",
        "shop-cart-recovery-api": "api",
    }
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h["spec"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"shop-cart-recovery-scheduler", "shop-cart-recovery-api"}
    assert hpas["shop-cart-recovery-api"]["maxReplicas"] == 9
    fixed_count = {d["metadata"]["name"]: "replicas" in d["spec"] for d in of_kind(docs, "Deployment")}
    assert fixed_count == {
        "shop-cart-recovery-consumer": True,
        "shop-cart-recovery-scheduler": False,
        "shop-cart-recovery-api": False,
    }
    (service,) = of_kind(docs, "Service")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"
    (ingress,) = of_kind(docs, "Ingress")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    public = {"/r/", "/s/", "/u/", "/c/", "/f/", "/webhooks/", "/api/", "/static/"}
    pages = {"/login", "/logout", "/agent", "/studio", "/dashboard"}
    assert {p["path"] for p in paths} == public | pages  # not /metrics, /healthz, /readyz
    for path in paths:
        assert path["backend"]["service"] == {"name": "shop-cart-recovery", "port": {"name": "http"}}
    assert len(of_kind(docs, "PodDisruptionBudget")) == 3


@pytest.mark.parametrize(
    ("consumer", "workers"),
    [
        ({}, "2"),  # no CPU limit: as for one CPU, not two per node CPU
        ({"replicaCount": 1, "resources": {"limits": {"cpu": "1500m", "memory": "2Gi"}}}, "4"),
        ({"replicaCount": 1, "resources": {"limits": {"cpu": 2, "memory": "2Gi"}}}, "4"),
        ({"replicaCount": 1, "resources": {"limits": {"cpu": 8, "memory": "2Gi"}}}, "4"),  # kafka.partitions (4)
        ({"replicaCount": 2, "resources": {"limits": {"cpu": 2, "memory": "2Gi"}}}, "2"),  # the pod's 4 / 2 partitions
        ({"replicaCount": 4, "resources": {"limits": {"cpu": 2, "memory": "2Gi"}}}, "1"),
        ({"replicaCount": 1, "resources": {"limits": {"cpu": "500m", "memory": "2Gi"}}}, "2"),
        # what the memory limit holds: ~150 MiB for the supervisor, ~224 MiB per worker
        ({"replicaCount": 1, "resources": {"limits": {"cpu": 2, "memory": "768Mi"}}}, "2"),
        ({"replicaCount": 1, "resources": {"limits": {"cpu": 4, "memory": "1G"}}}, "3"),
        ({"replicaCount": 1, "resources": {"limits": {"cpu": 4, "memory": "2147483648"}}}, "4"),
        ({"replicaCount": 1, "resources": {"limits": {"cpu": 4, "memory": "300Mi"}}}, "1"),
        ({"replicaCount": 1, "workers": 3, "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}, "3"),
    ],
)
def test_consumer_workers_follow_the_cpu_limit_within_the_partitions_and_memory(
    chart: helm.Chart, consumer: dict[str, Any], workers: str
) -> None:
    docs = render(chart, {"roles": {"split": True, "consumer": consumer}})
    args = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"]
        for d in of_kind(docs, "Deployment")
    }
    assert args["shop-cart-recovery-consumer"][-2:] == ["--workers", workers]
    assert "--workers" not in args["shop-cart-recovery-api"] + args["shop-cart-recovery-scheduler"]


@pytest.mark.parametrize("mebibytes", [300, 512, 768, 1024, 1500, 3072])
def test_the_chart_sizes_workers_by_memory_as_the_binary_does(chart: helm.Chart, mebibytes: int) -> None:
    """The chart's figures (a template cannot import them) are recovery/cli/workers.py's: same limit, same count."""
    from recovery.cli.workers import workers_for_memory

    limits = {"cpu": 64, "memory": f"{mebibytes}Mi"}
    values = {"roles": {"split": True, "consumer": {"replicaCount": 1, "resources": {"limits": limits}}}}
    docs = render(chart, {**values, "kafka": {"partitions": 64}})
    consumer = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-consumer"))
    args = consumer["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--workers", str(workers_for_memory(str(mebibytes * 2**20)))]


def test_a_memory_limit_that_is_no_quantity_is_refused_by_name(chart: helm.Chart) -> None:
    values = {"roles": {"split": True, "consumer": {"resources": {"limits": {"memory": "lots"}}}}}
    with pytest.raises(helm.HelmRenderError, match=r'memory limit "lots": expected a Kubernetes quantity'):
        chart.render(values, name="shop", namespace="recovery", is_install=True)


def test_keda_scales_consumers_on_lag_up_to_one_partition_per_worker(chart: helm.Chart) -> None:
    docs = render(chart, KEDA)
    (scaled,) = of_kind(docs, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {"name": "shop-cart-recovery-consumer"}
    consumer = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-consumer"))
    assert consumer["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--workers", "2"]
    # 12 partitions, 2 group members per pod: a seventh pod's workers would get no partition (and hold connections).
    assert scaled["spec"]["maxReplicaCount"] == 6
    assert scaled["spec"]["maxReplicaCount"] * 2 <= KEDA["kafka"]["partitions"]  # type: ignore[index]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == "cart-recovery"
    assert trigger["metadata"]["lagThreshold"] == "500"
    assert trigger["metadata"]["bootstrapServers"] == "kafka:9092"
    assert trigger["authenticationRef"] == {"name": "kafka-sasl"}
    assert "replicas" not in consumer["spec"]  # KEDA owns the count


@pytest.mark.parametrize(
    ("values", "counted"),
    [
        ({"roles": {"split": True, "consumer": {"replicaCount": 2, "workers": 3}}}, "roles.consumer.replicaCount 2"),
        (
            {
                "roles": {"split": True, "consumer": {"workers": 5}},
                "keda": {"enabled": True, "minReplicaCount": 3},
                "kafka": {"partitions": 12},
            },
            "keda.minReplicaCount 3",
        ),
    ],
)
def test_more_consumer_workers_than_partitions_is_refused_naming_the_settings(
    chart: helm.Chart, values: dict[str, Any], counted: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=rf"consumer replicas \({counted}\) x roles.consumer.workers"):
        chart.render(values, name="shop", namespace="recovery", is_install=True)


def test_keda_scales_schedulers_on_their_backlog_from_prometheus(chart: helm.Chart) -> None:
    docs = render(chart, BACKLOG)
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d["spec"] for d in of_kind(docs, "ScaledObject")}
    assert set(scaled) == {"shop-cart-recovery-consumer", "shop-cart-recovery-scheduler"}  # consumers still on lag
    scheduler = scaled["shop-cart-recovery-scheduler"]
    assert (scheduler["minReplicaCount"], scheduler["maxReplicaCount"]) == (2, 8)
    series = 'namespace="recovery",service="shop-cart-recovery-metrics"'
    (monitor,) = of_kind(docs, "ServiceMonitor")  # the Service those series are scraped through
    services = {service["metadata"]["name"]: service["metadata"]["labels"] for service in of_kind(docs, "Service")}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= services["shop-cart-recovery-metrics"].items()
    triggers = [
        (t["type"], t["metricType"], t["metadata"]["query"], t["metadata"]["threshold"], t["authenticationRef"]["name"])
        for t in scheduler["triggers"]
    ]
    assert triggers == [
        ("prometheus", "AverageValue", f"max(recovery_steps_due{{{series}}})", "300", "prometheus-token"),
        ("prometheus", "Value", f"max(recovery_oldest_due_step_age_seconds{{{series}}})", "45", "prometheus-token"),
    ]
    assert {t["metadata"]["serverAddress"] for t in scheduler["triggers"]} == {"http://prometheus.monitoring:9090"}
    assert "cpu" not in json.dumps(scheduler)
    counted = {d["metadata"]["name"]: "replicas" in d["spec"] for d in of_kind(docs, "Deployment")}
    assert counted == {  # KEDA owns the consumer and scheduler counts
        "shop-cart-recovery-consumer": False,
        "shop-cart-recovery-scheduler": False,
        "shop-cart-recovery-api": True,
    }
    assert not of_kind(docs, "HorizontalPodAutoscaler")


def test_the_gauges_the_scheduler_scales_on_are_the_services_own() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from recovery.ops.metrics import ServiceMetrics

    exposed = generate_latest(ServiceMetrics(CollectorRegistry()).registry).decode()
    template = (CHART / "templates" / "keda.yaml").read_text(encoding="utf-8")
    for gauge in re.findall(r"max\((recovery_\w+)\{", template):
        assert f"\n{gauge} " in exposed, gauge


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"roles": {"scheduler": {"autoscaling": {"enabled": True}}}}, "enable one"),
        ({"keda": {"scheduler": {"enabled": True, "minReplicaCount": 4, "maxReplicaCount": 3}}}, "minReplicaCount"),
    ],
)
def test_the_scheduler_has_one_autoscaler_with_sound_bounds(
    chart: helm.Chart, values: dict[str, Any], complaint: str
) -> None:
    merged = {**values, "roles": {"split": True, **values.get("roles", {})}}
    merged["keda"] = {"scheduler": {"enabled": True, **values.get("keda", {}).get("scheduler", {})}}
    with pytest.raises(helm.HelmRenderError, match=complaint):
        chart.render(merged, name="shop", namespace="recovery", is_install=True)


def test_service_monitor_scrapes_metrics_of_every_role(chart: helm.Chart) -> None:
    docs = render(chart, KEDA)
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    metrics = next(s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("-metrics"))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    assert "app.kubernetes.io/component" not in metrics["spec"]["selector"]  # consumer, scheduler and api


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"roles": {"consumer": {"replicaCount": -1}}}, "/roles/consumer/replicaCount"),
        ({"kafka": {"partitions": 0}}, "/kafka/partitions"),
        ({"config": {"recovery": {"database": {"url": "postgresql+asyncpg://u:pw@db/x"}}}}, "/config/recovery"),
        ({"config": {"recovery": {"kafka": {"security": {"password": "pw"}}}}}, "/config/recovery"),
        ({"config": {"recovery": {"channels": {"sms": {"auth_token": "t"}}}}}, "/config/recovery"),
        ({"config": {"recovery": {"callbacks": {"webhook_secret": "s"}}}}, "/config/recovery"),
        ({"kafka": {"security": {"protocol": "SASL_SCRAM"}}}, "/kafka/security/protocol"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"purge": {"enabled": True, "days": "forever"}}, "/purge/days"),
        ({"keda": {"scheduler": {"minReplicaCount": 0}}}, "/keda/scheduler/minReplicaCount"),
        ({"keda": {"scheduler": {"serverAddress": "prometheus:9090"}}}, "/keda/scheduler/serverAddress"),
        ({"keda": {"scheduler": {"threshold": 5}}}, "/keda/scheduler"),
    ],
)
def test_the_schema_rejects_bad_values_with_the_key(chart: helm.Chart, values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError) as error:
        chart.render(values, name="shop", namespace="recovery", is_install=True)
    assert complaint in str(error.value)


def test_notes_say_how_to_reach_the_pages_and_get_a_token(chart: helm.Chart) -> None:
    notes = chart.render(None, name="shop", namespace="recovery", is_install=True)["cart-recovery/templates/NOTES.txt"]
    assert "port-forward svc/shop-cart-recovery" in notes
    assert "Authorization: Bearer" in notes and "api-tokens" in notes


def test_the_chart_template_override_is_the_repository_templates_with_samples() -> None:
    """files/templates (config.templatesFromImage=false) is templates/, samples included; flows come from the image."""
    assert not (CHART / "files" / "flows.yaml").exists()
    shipped = filecmp.dircmp(ROOT / "templates", CHART / "files" / "templates", ignore=["README.md"])
    assert (shipped.left_only, shipped.right_only) == ([], []), "run `make chart-files`"
    for locale, comparison in shipped.subdirs.items():
        assert (comparison.left_only, comparison.right_only, comparison.diff_files) == ([], [], []), locale


def test_the_default_image_is_the_dockerfile_build_running_as_non_root(chart: helm.Chart) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    image = chart.values["image"]
    assert image["tag"] == chart.metadata["appVersion"]
    assert f"org.opencontainers.image.ref.name={image['repository']}" in dockerfile.replace('"', "")
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert len(stages) >= 2 and all(re.search(r":\d+\.\d+\.\d+-slim", base) for base in stages)
    # Pinned by digest, the same base in every stage (the comment above the FROM lines says how to update it).
    assert len(set(stages)) == 1 and re.search(r"@sha256:[0-9a-f]{64}$", stages[0])
    user = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)[-1]
    assert user not in ("root", "0") and user.split(":")[0] == str(chart.values["podSecurityContext"]["runAsUser"])
    assert re.search(r'^ENTRYPOINT \["recovery"\]', dockerfile, flags=re.M)
    assert re.search(r'^CMD \["run"\]', dockerfile, flags=re.M)
    final = dockerfile.split("\nFROM ")[-1]
    assert "gcc" not in final and "build-essential" not in final


def test_retention_purge_runs_on_a_schedule_when_enabled(chart: helm.Chart) -> None:
    assert of_kind(render(chart, None), "CronJob") == []
    (cron,) = of_kind(render(chart, SPLIT), "CronJob")
    assert cron["spec"]["schedule"] == "17 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["purge", "--days", "90"]


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": 5, "kafka": {"partitions": 4}},
        {"roles": {"split": True, "consumer": {"replicaCount": 3}}, "kafka": {"partitions": 2}},
    ],
)
def test_more_consumers_than_partitions_is_refused(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"replicas \(\d\) > kafka.partitions"):
        chart.render(values, name="shop", namespace="recovery", is_install=True)


def test_production_settings_reach_every_pod(chart: helm.Chart) -> None:
    """Kafka security from the Secret and a mounted CA, one partition count, the replication factor, the pool per
    role within PostgreSQL's 100 connections at the HPA maximums, extension points, preStop and placement."""
    docs = render(chart, PRODUCTION)
    budget = 0
    for deployment in of_kind(docs, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        role = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        main, sidecar = spec["containers"]
        assert sidecar["name"] == "proxy" and spec["initContainers"][0]["name"] == "wait"
        env = {item["name"]: item for item in main["env"]}
        assert env["RECOVERY_KAFKA__PARTITIONS"]["value"] == "4"
        assert env["RECOVERY_KAFKA__REPLICATION_FACTOR"]["value"] == "3"
        assert env["RECOVERY_KAFKA__SECURITY__PROTOCOL"]["value"] == "SASL_SSL"
        assert env["RECOVERY_KAFKA__SECURITY__SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        assert env["RECOVERY_KAFKA__SECURITY__CA_FILE"]["value"] == "/etc/recovery/kafka-tls/ca.crt"
        assert env["RECOVERY_KAFKA__SECURITY__PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "kafka-password"
        assert env["TZ"]["value"] == "Europe/Paris"
        assert main["envFrom"] == [{"secretRef": {"name": "shop-extra-env"}}]
        mounts = {mount["mountPath"] for mount in main["volumeMounts"]}
        assert {"/etc/recovery/kafka-tls", "/etc/pg-ca"} <= mounts
        assert main["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        assert spec["serviceAccountName"] == "shop-cart-recovery"
        affinity = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        assert affinity["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == role
        assert spec["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
        per_process = int(env["RECOVERY_DATABASE__POOL_SIZE"]["value"]) + int(
            env["RECOVERY_DATABASE__MAX_OVERFLOW"]["value"]
        )
        role_values = PRODUCTION["roles"].get(role, {})  # type: ignore[attr-defined]
        most = role_values.get("autoscaling", {}).get("maxReplicas") or deployment["spec"]["replicas"]
        args = main["args"]
        processes = int(args[args.index("--workers") + 1]) if "--workers" in args else 1  # each with its own pool
        budget += per_process * most * processes
    assert budget + 2 <= 100  # + the migration and purge jobs
    (account,) = of_kind(docs, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam")
    (job,) = of_kind(docs, "Job")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "default"  # hooks run before the account exists


def test_monitoring_ships_rules_a_dashboard_and_role_labels(chart: helm.Chart) -> None:
    """PrometheusRule alerts on the service's own metrics, a Grafana dashboard ConfigMap, role as a target label."""
    docs = render(chart, PRODUCTION)
    (rule,) = of_kind(docs, "PrometheusRule")
    exprs = " ".join(r["expr"] for group in rule["spec"]["groups"] for r in group["rules"])
    for metric in (
        "recovery_consumer_lag",
        "recovery_dead_letters_total",
        "recovery_steps_overdue",
        "recovery_oldest_due_step_age_seconds",
        "recovery_sends_total",
        "recovery_claims_taken_over_total",
    ):
        assert metric in exprs
    (dashboard,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["cart-recovery.json"])["panels"]
    assert any("recovery_consumer_lag" in t["expr"] for p in panels for t in p["targets"])
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["spec"]["podTargetLabels"] == ["app.kubernetes.io/component", "team"]
    (policy,) = of_kind(docs, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert of_kind(render(chart, None), "PrometheusRule") == []
