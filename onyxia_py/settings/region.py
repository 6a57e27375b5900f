"""The region (how services are exposed, what the onyxia context tells charts) and projects
(namespaces, quotas, groups)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from onyxia_py.settings.base import Group


class SliderBounds(Group):
    """Bounds of one kind of slider (Onyxia's region.sliders.<name>): unset ones stay as
    the schema has them."""

    min: float | None = Field(None, description="Lowest value the slider offers.")
    max: float | None = Field(None, description="Highest value the slider offers and accepts.")
    step: float | None = Field(None, description="Step of the slider.")
    unit: str | None = Field(
        None,
        description="Unit of these numbers (m, Gi, Mi...); unset: the schema's own. They are "
        "converted to the unit the schema's slider shows.",
    )


def _ingress_namespace_peer() -> list[dict[str, Any]]:
    return [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


class RegionSettings(Group):
    """The region: how services are exposed and what the onyxia context tells charts."""

    domain: str = Field("lab.127.0.0.1.nip.io", description="Domain of service URLs (k8s.domain).")
    ingress_class: str | None = Field(
        None,
        description="Ingress class name for services (k8s.ingressClassName); unset: "
        "charts keep their default (usually the cluster's default class).",
    )
    ingress: bool = Field(True, description="Expose services with Ingress objects (k8s.ingress).")
    service_url_template: str = Field(
        "https://{host}",
        description="A service's URL from its Ingress host ({host}); the local platform, whose "
        "ingress serves plain HTTP on a port of 127.0.0.1, uses http://{host}:PORT.",
    )
    route: bool = Field(False, description="Expose services with OpenShift Routes (k8s.route).")
    istio_enabled: bool = Field(
        False, description="Expose services through Istio (k8s.istio.enabled)."
    )
    istio_gateways: list[str] = Field(
        default_factory=list,
        description="Istio gateways services' VirtualServices attach to (k8s.istio.gateways).",
    )
    use_cert_manager: bool = Field(
        False, description="Ask cert-manager for certificates (k8s.useCertManager)."
    )
    cert_manager_issuer: str | None = Field(
        None, description="cert-manager ClusterIssuer name (k8s.certManagerClusterIssuer)."
    )
    init_script_url: str = Field(
        "", description="Script services run at start (k8s.initScriptUrl)."
    )
    default_network_policy: bool = Field(
        True, description="Charts create their default NetworkPolicy (region.defaultNetworkPolicy)."
    )
    network_policy_from: list[dict[str, Any]] = Field(
        default_factory=_ingress_namespace_peer,
        description="NetworkPolicy peers (namespaceSelector/podSelector/ipBlock objects) charts "
        "admit besides the namespace's own pods (region.from); the default is the ingress "
        "controller's namespace: keep it in step with projects.ingress_namespace.",
    )
    allowed_uri_pattern: str = Field(
        "^https://", description="Pattern of URIs users may give charts (region.allowedURIPattern)."
    )
    oauth2: dict[str, Any] = Field(
        default_factory=dict,
        description="OAuth2 client settings for charts that log their users in themselves "
        "(region.oauth2, e.g. {clientId: ..., issuerURI: ...}); empty: charts keep their "
        "defaults. Never put a client secret here: every user's launch can read it.",
    )
    custom_values: dict[str, Any] = Field(
        default_factory=dict,
        description="Site-specific values charts may read (region.customValues).",
    )
    resources: dict[str, Any] = Field(
        default_factory=dict,
        description="Default resources offered to charts (region.resources: cpuRequest, "
        "cpuLimit, memoryRequest, memoryLimit, disk, gpu).",
    )
    sliders: dict[str, SliderBounds] = Field(
        default_factory=dict,
        description="Bounds of the launch form's sliders by name (cpu, memory, disk, gpu: "
        "x-onyxia.useRegionSliderConfig, else the slider's sliderRangeId), each {min, max, "
        "step, unit}, e.g. {cpu: {max: 16000, unit: m}}; the launch refuses values beyond them "
        "and a chart's own bounds stay the outer limit (region.sliders).",
    )
    role_sliders: dict[str, dict[str, SliderBounds]] = Field(
        default_factory=dict,
        description="Slider bounds per role, over region.sliders (the first of the user's "
        "roles in sorted order that sets a bound wins), e.g. {gpu-users: {memory: {max: 128, "
        "unit: Gi}}}.",
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations charts add (region.tolerations)."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector charts add (region.nodeSelector)."
    )
    kubernetes_enabled: bool = Field(
        True,
        description="Default of a service's access to the Kubernetes API of its project "
        "(kubernetes.enabled; the bundled ide/role.json).",
    )
    kubernetes_role: Literal["view", "edit", "admin"] = Field(
        "view",
        description="Default ClusterRole a service's account gets in its project "
        "(kubernetes.role; the bundled ide/role.json).",
    )
    proxy: dict[str, Any] | None = Field(
        None,
        description="HTTP proxy to inject (proxyInjection: enabled, httpProxyUrl, "
        "httpsProxyUrl, noProxy); unset: none.",
    )
    package_repositories: dict[str, Any] | None = Field(
        None,
        description="Package mirrors to inject (packageRepositoryInjection: pypiProxyUrl, "
        "condaProxyUrl, cranProxyUrl, packageManagerUrl); unset: none.",
    )
    certificate_authority: str | None = Field(
        None,
        description="CA bundle to inject (certificateAuthorityInjection.cacerts), given to "
        "charts as written (Onyxia charts expect it base64-encoded); unset: none.",
    )
    certificate_authority_path: str | None = Field(
        None,
        description="Where services find the CA bundle in their image "
        "(certificateAuthorityInjection.pathToCaBundle); unset: not given.",
    )


class ProjectSettings(Group):
    """Projects: personal and group namespaces."""

    user_namespace_prefix: str = Field("user-", description="Prefix of personal namespaces.")
    group_namespace_prefix: str = Field("projet-", description="Prefix of group namespaces.")
    group_name_pattern: str | None = Field(
        None, description="Regex applied to group names before they become projects."
    )
    group_name_replacement: str = Field("", description="Replacement for group_name_pattern.")
    namespace_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every project namespace."
    )
    namespace_annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations added to every project namespace."
    )
    pod_security: Literal["restricted", "baseline", "privileged", ""] = Field(
        "restricted",
        description="Pod Security Standard enforced on project namespaces (labels "
        "pod-security.kubernetes.io/enforce, warn and audit); empty leaves them unlabelled.",
    )
    kubernetes_user_prefix: str = Field(
        "",
        description="Prefix of the Kubernetes user a person acts as (match the API server's "
        "--oidc-username-prefix when it trusts the same provider).",
    )
    kubernetes_group_prefix: str = Field(
        "", description="Prefix of the Kubernetes groups a person acts with."
    )
    quota_enabled: bool = Field(True, description="Give each project a ResourceQuota.")
    user_quota: dict[str, str] = Field(
        default_factory=lambda: {
            "requests.cpu": "8",
            "requests.memory": "32Gi",
            "limits.cpu": "16",
            "limits.memory": "64Gi",
            "requests.storage": "200Gi",
            "count/pods": "50",
            "requests.nvidia.com/gpu": "1",
        },
        description="ResourceQuota of personal projects (keys as in a ResourceQuota's hard).",
    )
    group_quota: dict[str, str] = Field(
        default_factory=lambda: {
            "requests.cpu": "32",
            "requests.memory": "128Gi",
            "limits.cpu": "64",
            "limits.memory": "256Gi",
            "requests.storage": "1Ti",
            "count/pods": "200",
            "requests.nvidia.com/gpu": "4",
        },
        description="ResourceQuota of group projects.",
    )
    role_quotas: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Personal quota per role (first of the user's roles in sorted order wins).",
    )
    limit_range: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
            "default": {"cpu": "2", "memory": "4Gi"},
        },
        description="Container defaults of each project's LimitRange (empty: no LimitRange).",
    )
    network_policy: bool = Field(
        True,
        description="Give each project a NetworkPolicy refusing traffic from other namespaces "
        "(the ingress controller's namespace excepted).",
    )
    ingress_namespace: str = Field(
        "ingress-nginx", description="Namespace of the ingress controller (allowed in)."
    )
