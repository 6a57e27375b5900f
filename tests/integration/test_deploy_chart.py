"""The chart that deploys onyxia-py itself (helm/onyxia-py): lint, render, server-side dry run,
and a real install whose ClusterRole is checked with SubjectAccessReviews on the API server."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import AuthMode, Settings

CHART = Path(__file__).resolve().parents[2] / "helm" / "onyxia-py"

PRODUCTION: dict[str, Any] = {
    "replicaCount": 2,
    "image": {"tag": "0.1.0"},
    "config": {
        "server": {"log_format": "json"},
        "auth": {
            "mode": "oidc",
            "issuer_url": "https://sso.example.org/realms/datalab",
            "client_id": "onyxia",
            "roles_claim": "realm_access.roles",
        },
        "region": {"domain": "lab.example.org", "ingress_class": "nginx"},
    },
    "database": {"url": "postgresql+asyncpg://onyxia:db-password@postgresql:5432/onyxia"},
    "secrets": {
        "sessionSecret": "s" * 48,
        "oidcClientSecret": "oidc-client-secret-value",
        "tokenEncryptionKeys": ["k" * 40, "o" * 40],
    },
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "datalab.example.org",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "tls": {"enabled": True, "secretName": "datalab-tls"},
    },
}

Manifests = dict[tuple[str, str], dict[str, Any]]


def render(values: dict[str, Any], *, name: str = "demo", namespace: str = "onyxia") -> Manifests:
    """The chart's objects for `values`, by (kind, name)."""
    rendered = helm_python.Chart.load(CHART).render(values, name=name, namespace=namespace)
    objects: Manifests = {}
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def only(objects: Manifests, kind: str) -> dict[str, Any]:
    """The one object of `kind`."""
    found = [o for (k, _), o in objects.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container_of(objects: Manifests) -> dict[str, Any]:
    deployment = only(objects, "Deployment")
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(objects: Manifests) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container_of(objects)["env"]}


# -- lint and render ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, PRODUCTION], ids=["defaults", "production"])
def test_chart_lints_strict(values: dict[str, Any]) -> None:
    report = helm_python.lint(CHART, values, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    assert report["total_charts_linted"] == 1


def test_defaults_render_one_locked_down_replica_on_sqlite() -> None:
    objects = render({})
    kinds = sorted({kind for kind, _ in objects})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "demo-onyxia-py"
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = container_of(objects)
    assert container["image"] == "ghcr.io/onyxia-py/onyxia-py:0.1.0"
    assert container["command"] == ["python", "-m", "onyxia_py", "serve"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {
        "/etc/onyxia-py": "config",
        "/tmp": "tmp",
        "/var/cache/onyxia-py": "cache",
        "/data": "data",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["data"]

    env = env_of(objects)
    assert env["ONYXIA_CONFIG"]["value"] == "/etc/onyxia-py/onyxia.yaml"
    assert env["ONYXIA_SERVER__HOST"]["value"] == "0.0.0.0"
    assert env["ONYXIA_DATABASE__URL"]["value"] == "sqlite+aiosqlite:////data/onyxia.db"
    assert env["ONYXIA_CATALOGS__CACHE_DIR"]["value"].startswith("/var/cache/onyxia-py/")
    session = env["ONYXIA_SERVER__SESSION_SECRET"]["valueFrom"]["secretKeyRef"]
    assert session == {"name": "demo-onyxia-py", "key": "session-secret"}
    generated = base64.b64decode(only(objects, "Secret")["data"]["session-secret"])
    assert len(generated) >= 32

    config = yaml.safe_load(only(objects, "ConfigMap")["data"]["onyxia.yaml"])
    assert config["auth"]["mode"] == "oidc"
    assert "access_mode" not in config.get("kubernetes", {})

    # Cluster-scoped names carry the namespace: two releases "demo" cannot clash.
    assert ("ClusterRole", "onyxia-demo-onyxia-py") in objects


def test_production_values_render_a_stateless_highly_available_platform() -> None:
    objects = render(PRODUCTION)
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in pod["volumes"]}

    pdb = only(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]

    ingress = only(objects, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["datalab.example.org"], "secretName": "datalab-tls"}
    ]
    assert ingress["spec"]["rules"][0]["host"] == "datalab.example.org"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "demo-onyxia-py", "port": {"name": "http"}}

    config = yaml.safe_load(only(objects, "ConfigMap")["data"]["onyxia.yaml"])
    assert config["server"]["public_url"] == "https://datalab.example.org"
    assert config["auth"]["issuer_url"] == "https://sso.example.org/realms/datalab"
    text = only(objects, "ConfigMap")["data"]["onyxia.yaml"]
    for secret in ("db-password", "oidc-client-secret-value", "s" * 48, "k" * 40):
        assert secret not in text

    data = {k: base64.b64decode(v).decode() for k, v in only(objects, "Secret")["data"].items()}
    assert data == {
        "session-secret": "s" * 48,
        "database-url": "postgresql+asyncpg://onyxia:db-password@postgresql:5432/onyxia",
        "oidc-client-secret": "oidc-client-secret-value",
        "token-encryption-keys": f'["{"k" * 40}","{"o" * 40}"]',
    }
    env = env_of(objects)
    for variable, key in [
        ("ONYXIA_SERVER__SESSION_SECRET", "session-secret"),
        ("ONYXIA_DATABASE__URL", "database-url"),
        ("ONYXIA_AUTH__CLIENT_SECRET", "oidc-client-secret"),
        ("ONYXIA_AUTH__TOKEN_ENCRYPTION_KEYS", "token-encryption-keys"),
    ]:
        assert env[variable]["valueFrom"]["secretKeyRef"]["key"] == key
        assert "value" not in env[variable]

    policy = only(objects, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]


def test_rendered_settings_are_accepted_by_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap file plus the container's environment make valid Settings."""
    objects = render(PRODUCTION)
    config_file = tmp_path / "onyxia.yaml"
    config_file.write_text(only(objects, "ConfigMap")["data"]["onyxia.yaml"], encoding="utf-8")
    secret = {k: base64.b64decode(v).decode() for k, v in only(objects, "Secret")["data"].items()}
    for name, variable in env_of(objects).items():
        if "valueFrom" in variable:
            monkeypatch.setenv(name, secret[variable["valueFrom"]["secretKeyRef"]["key"]])
        elif name.startswith("ONYXIA_"):
            monkeypatch.setenv(name, variable["value"])
    monkeypatch.setenv("ONYXIA_CONFIG", str(config_file))

    settings = Settings()
    assert settings.server.host == "0.0.0.0"
    assert settings.server.public_url == "https://datalab.example.org"
    assert settings.auth.mode is AuthMode.OIDC
    assert settings.auth.client_secret is not None
    assert settings.auth.client_secret.get_secret_value() == "oidc-client-secret-value"
    assert [k.get_secret_value() for k in settings.auth.token_encryption_keys] == [
        "k" * 40,
        "o" * 40,
    ]
    assert settings.database.url.get_secret_value().startswith("postgresql+asyncpg://")
    assert settings.region.domain == "lab.example.org"
    # The replicas elect their leader, and lock releases, with Leases in the Role's namespace.
    assert settings.leader_election.lease_name == "demo-onyxia-py"
    assert settings.leader_election.lease_namespace == "onyxia"
    role = only(objects, "Role")
    assert role["metadata"]["namespace"] == "onyxia"
    [leases] = [r for r in role["rules"] if r["resources"] == ["leases"]]
    assert set(leases["verbs"]) == {"create", "get", "update", "delete"}


def test_existing_secret_replaces_the_charts_secret() -> None:
    objects = render(
        {
            "replicaCount": 3,
            "secrets": {"existingSecret": "onyxia-secrets"},
            "database": {"urlInExistingSecret": True},
        }
    )
    assert not [kind for kind, _ in objects if kind == "Secret"]
    env = env_of(objects)
    for variable in (
        "ONYXIA_SERVER__SESSION_SECRET",
        "ONYXIA_DATABASE__URL",
        "ONYXIA_AUTH__CLIENT_SECRET",
        "ONYXIA_AUTH__TOKEN_ENCRYPTION_KEYS",
    ):
        assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == "onyxia-secrets"
    assert env["ONYXIA_AUTH__CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "optional" not in env["ONYXIA_SERVER__SESSION_SECRET"]["valueFrom"]["secretKeyRef"]


def test_two_replicas_on_sqlite_are_refused_with_the_reason() -> None:
    with pytest.raises(helm_python.HelmRenderError, match="database is SQLite") as caught:
        render({"replicaCount": 2})
    assert "PostgreSQL" in str(caught.value)
    with pytest.raises(helm_python.HelmRenderError, match="database is SQLite"):
        render({"replicaCount": 2, "database": {"url": "sqlite+aiosqlite:////data/x.db"}})


def test_secrets_in_the_config_map_are_refused() -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"config\.auth\.client_secret"):
        render({"config": {"auth": {"mode": "oidc", "client_secret": "oops"}}})
    with pytest.raises(helm_python.HelmRenderError, match=r"config\.database\.url"):
        render({"config": {"database": {"url": "postgresql+asyncpg://u:p@h/db"}}})


def test_unknown_values_are_refused_by_the_schema() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="replicas"):
        render({"replicas": 2})
    with pytest.raises(helm_python.HelmValuesError, match="database/url"):
        render({"database": {"url": "mysql://u:p@h/db"}})


# What the services listing cache's cluster-wide informers read, by resource: its API group.
CACHE_KINDS = {
    "configmaps": "",
    "pods": "",
    "deployments": "apps",
    "statefulsets": "apps",
    "ingresses": "networking.k8s.io",
}


def test_cluster_role_holds_no_wildcard_nor_dangerous_grant() -> None:
    role = only(render(PRODUCTION), "ClusterRole")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule.get("apiGroups", [])
        assert not {"secrets", "pods/exec", "pods/log", "serviceaccounts"} & set(rule["resources"])
        if set(CACHE_KINDS) & set(rule["resources"]):  # read-only: GPUs and listing cache
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert "escalate" not in rule["verbs"]
        if "bind" in rule["verbs"]:
            assert rule["resourceNames"] == ["admin"]


def test_cluster_role_lets_the_listing_cache_read_its_kinds_everywhere() -> None:
    role = only(render(PRODUCTION), "ClusterRole")
    readable = {
        (group, resource)
        for rule in role["rules"]
        if {"get", "list", "watch"} <= set(rule["verbs"]) and "resourceNames" not in rule
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert {(group, kind) for kind, group in CACHE_KINDS.items()} <= readable
    assert ("", "namespaces") in readable


# -- against the API server --------------------------------------------------------------------


@pytest.fixture
def namespace(restricted_namespace: str) -> str:
    """The platform's own pods must run where the `restricted` Pod Security level is enforced."""
    return restricted_namespace


def test_manifests_pass_a_server_side_dry_run(
    kube: KubeClient, kubeconfig: Path, namespace: str
) -> None:
    release = f"dry-{secrets.token_hex(3)}"
    with helm_python.Config(kubeconfig_path=str(kubeconfig), namespace=namespace) as config:
        for values in ({}, PRODUCTION):
            answer = config.install(CHART, release, values, dry_run="server", namespace=namespace)
            manifest = answer["manifest"]
            assert "kind: ClusterRole\n" in manifest
            assert f"name: {namespace}-{release}-onyxia-py" in manifest
        assert "apiVersion: policy/v1\nkind: PodDisruptionBudget" in manifest
        assert answer["name"] == release


def sar(kube: KubeClient, user: str, groups: list[str], attributes: dict[str, str]) -> bool:
    """Whether `user` may do `attributes`, as the API server's authorizer answers."""
    review = kube.request_sync(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
        },
    )
    allowed: bool = review["status"].get("allowed", False)
    return allowed


RBAC = "rbac.authorization.k8s.io"

ALLOWED: dict[str, dict[str, str]] = {
    "impersonate a user": {"verb": "impersonate", "resource": "users", "name": "alice"},
    "impersonate a group": {"verb": "impersonate", "resource": "groups", "name": "datalab"},
    "create a namespace": {"verb": "create", "resource": "namespaces"},
    "label a namespace": {"verb": "patch", "resource": "namespaces", "name": "user-alice"},
    "create a rolebinding in a project": {
        "verb": "create",
        "group": RBAC,
        "resource": "rolebindings",
        "namespace": "user-alice",
    },
    "create a rolebinding in any namespace": {
        "verb": "create",
        "group": RBAC,
        "resource": "rolebindings",
        "namespace": "projet-datalab",
    },
    "bind clusterrole admin": {
        "verb": "bind",
        "group": RBAC,
        "resource": "clusterroles",
        "name": "admin",
    },
    "create a resourcequota": {
        "verb": "create",
        "resource": "resourcequotas",
        "namespace": "user-alice",
    },
    "create a limitrange": {"verb": "create", "resource": "limitranges", "namespace": "user-alice"},
    "create a networkpolicy": {
        "verb": "create",
        "group": "networking.k8s.io",
        "resource": "networkpolicies",
        "namespace": "user-alice",
    },
    "list nodes": {"verb": "list", "resource": "nodes"},
    "watch nodes": {"verb": "watch", "resource": "nodes"},
    "list pods everywhere": {"verb": "list", "resource": "pods"},
    "create events": {"verb": "create", "resource": "events", "namespace": "user-alice"},
    "create selfsubjectaccessreviews": {
        "verb": "create",
        "group": "authorization.k8s.io",
        "resource": "selfsubjectaccessreviews",
    },
    "create subjectaccessreviews": {
        "verb": "create",
        "group": "authorization.k8s.io",
        "resource": "subjectaccessreviews",
    },
}

DENIED: dict[str, dict[str, str]] = {
    "list secrets cluster-wide": {"verb": "list", "resource": "secrets"},
    "get secrets in kube-system": {
        "verb": "get",
        "resource": "secrets",
        "namespace": "kube-system",
        "name": "anything",
    },
    "list secrets in a project": {
        "verb": "list",
        "resource": "secrets",
        "namespace": "user-alice",
    },
    "create pods in kube-system": {
        "verb": "create",
        "resource": "pods",
        "namespace": "kube-system",
    },
    "exec into pods": {
        "verb": "create",
        "resource": "pods",
        "subresource": "exec",
        "namespace": "user-alice",
    },
    "create clusterrolebindings": {
        "verb": "create",
        "group": RBAC,
        "resource": "clusterrolebindings",
    },
    "update clusterroles": {
        "verb": "update",
        "group": RBAC,
        "resource": "clusterroles",
        "name": "admin",
    },
    "escalate clusterroles": {"verb": "escalate", "group": RBAC, "resource": "clusterroles"},
    "escalate clusterrole admin": {
        "verb": "escalate",
        "group": RBAC,
        "resource": "clusterroles",
        "name": "admin",
    },
    "bind clusterrole cluster-admin": {
        "verb": "bind",
        "group": RBAC,
        "resource": "clusterroles",
        "name": "cluster-admin",
    },
    "bind clusterrole edit": {
        "verb": "bind",
        "group": RBAC,
        "resource": "clusterroles",
        "name": "edit",
    },
    "delete nodes": {"verb": "delete", "resource": "nodes", "name": "sim-node-0"},
    "impersonate serviceaccounts": {
        "verb": "impersonate",
        "resource": "serviceaccounts",
        "namespace": "kube-system",
        "name": "default",
    },
    "create deployments in a project": {
        "verb": "create",
        "group": "apps",
        "resource": "deployments",
        "namespace": "user-alice",
    },
}


# The listing cache's informers: list and watch in all namespaces (namespace "").
CACHE_READS: dict[str, dict[str, str]] = {
    f"{verb} {kind} in all namespaces": {
        "verb": verb,
        "group": group,
        "resource": kind,
        "namespace": "",
    }
    for kind, group in CACHE_KINDS.items()
    for verb in ("list", "watch")
} | {"watch namespaces": {"verb": "watch", "resource": "namespaces"}}

# Secrets stay unreadable (the cache reads their ConfigMap mirror), and in projects the platform
# writes only as the user it impersonates.
PROJECT = "projet-datalab"
MIRROR = {"resource": "configmaps", "namespace": PROJECT}
CACHE_NEVER: dict[str, dict[str, str]] = {
    **{
        f"{verb} secrets {where}": {"verb": verb, "resource": "secrets", "namespace": namespace}
        for verb in ("get", "list", "watch")
        for where, namespace in (("cluster-wide", ""), ("in a project", PROJECT))
    },
    "create configmaps in a project": {**MIRROR, "verb": "create"},
    "patch a configmap in a project": {**MIRROR, "verb": "patch", "name": "jupyter-mirror"},
    "delete a configmap in a project": {**MIRROR, "verb": "delete", "name": "jupyter-mirror"},
    "create pods in a project": {"verb": "create", "resource": "pods", "namespace": PROJECT},
    "patch deployments in a project": {
        "verb": "patch",
        "group": "apps",
        "resource": "deployments",
        "namespace": PROJECT,
        "name": "jupyter",
    },
}


def wait_for_running_pods(kube: KubeClient, namespace: str, release: str, count: int) -> None:
    deadline = time.monotonic() + 60
    running: list[str] = []
    while time.monotonic() < deadline:
        pods = kube.request_sync(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query={"labelSelector": f"app.kubernetes.io/instance={release}"},
        )["items"]
        running = [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"]
        if len(running) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{count} pod(s) of {release} should run, got {running}")


@pytest.fixture
def installed(kube: KubeClient, kubeconfig: Path, namespace: str) -> Iterator[str]:
    """The chart really installed (production values) in `namespace`; yields the release."""
    release = f"onyxia-{secrets.token_hex(3)}"
    cluster_name = f"{namespace}-{release}-onyxia-py"
    config = helm_python.Config(kubeconfig_path=str(kubeconfig), namespace=namespace)
    try:
        config.install(CHART, release, PRODUCTION, namespace=namespace)
        yield release
    finally:
        try:
            config.uninstall(release, ignore_not_found=True)
        finally:
            config.close()
            # Whatever happened, leave no cluster-scoped object behind.
            for kind in ("clusterrolebindings", "clusterroles"):
                path = f"/apis/{RBAC}/v1/{kind}/{cluster_name}"
                try:
                    kube.request_sync("DELETE", path)
                except NotFound:
                    continue


def test_installed_service_account_has_exactly_the_platforms_rights(
    kube: KubeClient, kubeconfig: Path, namespace: str, installed: str
) -> None:
    sa_name = f"{installed}-onyxia-py"
    user = f"system:serviceaccount:{namespace}:{sa_name}"
    groups = [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    # The Deployment's pods run (on the simulated node).
    wait_for_running_pods(kube, namespace, installed, 2)

    lease = {"group": "coordination.k8s.io", "resource": "leases", "namespace": namespace}
    mine = {**lease, "name": f"{installed}-onyxia-py"}
    outbox = {"group": "", "resource": "configmaps", "namespace": namespace}
    may = {
        **ALLOWED,
        **CACHE_READS,
        "create its lease": {**lease, "verb": "create"},
        "get its lease": {**mine, "verb": "get"},
        "renew its lease": {**mine, "verb": "update"},
        "lock a release": {**lease, "verb": "update", "name": "onyxia-release-0123"},
        "read a release lock": {**lease, "verb": "get", "name": "onyxia-release-0123"},
        "release a release lock": {**lease, "verb": "delete", "name": "onyxia-release-0123"},
        "keep an audit row": {**outbox, "verb": "create"},
        "list the audit outbox": {**outbox, "verb": "list"},
        "remove a delivered row": {**outbox, "verb": "delete", "name": "onyxia-audit-1"},
    }
    may_not = {
        **DENIED,
        **CACHE_NEVER,
        "list leases": {**lease, "verb": "list"},
        "watch leases": {**lease, "verb": "watch"},
        "take the controller manager's lease": {
            **lease,
            "verb": "update",
            "namespace": "kube-system",
            "name": "kube-controller-manager",
        },
        "read leases elsewhere": {**mine, "verb": "get", "namespace": "default"},
        "change a config map": {**outbox, "verb": "update", "name": "onyxia-audit-1"},
        "keep rows elsewhere": {**outbox, "verb": "create", "namespace": "default"},
    }
    allowed = {what: sar(kube, user, groups, attrs) for what, attrs in may.items()}
    assert allowed == dict.fromkeys(may, True)
    denied = {what: sar(kube, user, groups, attrs) for what, attrs in may_not.items()}
    assert denied == dict.fromkeys(may_not, False)
    # Another service account in the namespace gets none of it.
    other = f"system:serviceaccount:{namespace}:default"
    assert not sar(kube, other, groups, ALLOWED["impersonate a group"])


def test_upgrade_keeps_the_generated_session_secret_and_uninstall_cleans_up(
    kube: KubeClient, kubeconfig: Path, namespace: str
) -> None:
    release = f"gone-{secrets.token_hex(3)}"
    cluster_name = f"{namespace}-{release}-onyxia-py"
    with helm_python.Config(kubeconfig_path=str(kubeconfig), namespace=namespace) as config:
        config.install(CHART, release, {}, namespace=namespace)
        try:
            for kind in ("clusterroles", "clusterrolebindings"):
                kube.request_sync("GET", f"/apis/{RBAC}/v1/{kind}/{cluster_name}")
            secret_path = f"/api/v1/namespaces/{namespace}/secrets/{release}-onyxia-py"
            before = kube.request_sync("GET", secret_path)["data"]["session-secret"]
            config.upgrade(CHART, release, {}, namespace=namespace)
            after = kube.request_sync("GET", secret_path)["data"]["session-secret"]
            # Read back from the cluster: a new random secret would end every session.
            assert after == before
        finally:
            config.uninstall(release)
    for kind in ("clusterroles", "clusterrolebindings"):
        with pytest.raises(NotFound):
            kube.request_sync("GET", f"/apis/{RBAC}/v1/{kind}/{cluster_name}")
