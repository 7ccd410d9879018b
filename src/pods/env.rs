//! A container's environment: literal values, `$(VAR)` expansion, downward-API fields, and
//! values from ConfigMaps and Secrets. Pure: the controller fetches the referenced objects
//! (see [`references`]) and passes them in as [`Sources`].
//!
//! Rules (as the kubelet applies them): `env` entries are resolved in order and may refer to
//! earlier ones with `$(NAME)` (`$$` escapes a `$`); `envFrom` comes first and `env` overrides
//! it; command and args are expanded with the final environment. A missing object or key is an
//! error unless the reference is `optional`, in which case it is skipped and reported once.
//! Every container also gets the link variables of the Services in [`Sources::services`] (as
//! a kubelet writes them), usable in `$(VAR)`, after its own variables, which win.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Container as PodContainer, Pod};

use crate::eci::container_spec::{EnvironmentVar, FieldRef};

/// Kind of a referenced object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// A ConfigMap.
    ConfigMap,
    /// A Secret.
    Secret,
}

impl SourceKind {
    /// Event reason when the object or key is missing.
    pub fn missing_reason(self, optional: bool) -> &'static str {
        match (self, optional) {
            (SourceKind::ConfigMap, true) => "OptionalConfigMapNotFound",
            (SourceKind::ConfigMap, false) => "MandatoryConfigMapNotFound",
            (SourceKind::Secret, true) => "OptionalSecretNotFound",
            (SourceKind::Secret, false) => "MandatorySecretNotFound",
        }
    }
}

/// The referenced objects' data (`None`: the object does not exist). Secret values are
/// already decoded; they only ever go into the create request, never a log or event.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// By kind and name.
    pub objects: HashMap<(SourceKind, String), Option<BTreeMap<String, String>>>,
    /// Service-account tokens of projected volumes, by volume name and file path.
    pub tokens: HashMap<(String, String), String>,
    /// The claims of `persistentVolumeClaim` and `ephemeral` volumes, by volume name.
    pub claims: HashMap<String, super::storage::Claim>,
    /// The Services whose docker-link variables every container gets (the `kubernetes`
    /// Service with the API server's address pods can reach, then, with `enableServiceLinks`,
    /// those of the pod's namespace).
    pub services: Vec<ServiceLink>,
}

/// A Service as its link variables see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLink {
    /// The Service's name.
    pub name: String,
    /// Its address (the ClusterIP, or the API server's address for `kubernetes`).
    pub host: String,
    /// Its ports: name (may be empty), port, protocol (`TCP`, `UDP`, `SCTP`).
    pub ports: Vec<(String, u16, String)>,
}

/// The variables a kubelet writes for `services`, in order: `<NAME>_SERVICE_HOST`,
/// `<NAME>_SERVICE_PORT`, `<NAME>_SERVICE_PORT_<PORTNAME>`, `<NAME>_PORT` and, per port,
/// `<NAME>_PORT_<port>_<PROTO>` with its `_PROTO`, `_PORT` and `_ADDR` (names upper case,
/// `-` → `_`). A Service listed twice keeps its first entry.
pub fn service_env(services: &[ServiceLink]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    let upper = |s: &str| s.to_ascii_uppercase().replace('-', "_");
    for service in services {
        let Some((_, first_port, first_proto)) = service.ports.first() else {
            continue;
        };
        if !seen.insert(service.name.clone()) {
            continue;
        }
        let name = upper(&service.name);
        let host = &service.host;
        let url_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        out.push((format!("{name}_SERVICE_HOST"), host.clone()));
        out.push((format!("{name}_SERVICE_PORT"), first_port.to_string()));
        for (port_name, port, _) in &service.ports {
            if !port_name.is_empty() {
                out.push((
                    format!("{name}_SERVICE_PORT_{}", upper(port_name)),
                    port.to_string(),
                ));
            }
        }
        out.push((
            format!("{name}_PORT"),
            format!(
                "{}://{url_host}:{first_port}",
                first_proto.to_ascii_lowercase()
            ),
        ));
        for (_, port, proto) in &service.ports {
            let prefix = format!("{name}_PORT_{port}_{}", proto.to_ascii_uppercase());
            let lower = proto.to_ascii_lowercase();
            out.push((prefix.clone(), format!("{lower}://{url_host}:{port}")));
            out.push((format!("{prefix}_PROTO"), lower));
            out.push((format!("{prefix}_PORT"), port.to_string()));
            out.push((format!("{prefix}_ADDR"), host.clone()));
        }
    }
    out
}

/// A reference that could not be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The kind.
    pub kind: SourceKind,
    /// Object name.
    pub name: String,
    /// The key, if a single key was asked for.
    pub key: Option<String>,
    /// Whether the reference was optional (then it was skipped).
    pub optional: bool,
    /// The container.
    pub container: String,
}

impl Missing {
    /// Short text for an event (names only, never values).
    pub fn note(&self) -> String {
        let kind = match self.kind {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
        };
        match &self.key {
            Some(key) => format!(
                "container {:?}: key {key:?} of {kind} {:?} not found",
                self.container, self.name
            ),
            None => format!(
                "container {:?}: {kind} {:?} not found",
                self.container, self.name
            ),
        }
    }
}

/// A container's resolved environment and expanded command/args.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// Variables in order.
    pub vars: Vec<EnvironmentVar>,
    /// Expanded command.
    pub command: Vec<String>,
    /// Expanded args.
    pub args: Vec<String>,
}

/// Every ConfigMap and Secret the pod references in `env`, `envFrom` and volumes.
pub fn references(pod: &Pod) -> BTreeSet<(SourceKind, String)> {
    let mut out = BTreeSet::new();
    for c in containers(pod) {
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                out.insert((SourceKind::ConfigMap, r.name.clone()));
            }
            if let Some(r) = &from.secret_ref {
                out.insert((SourceKind::Secret, r.name.clone()));
            }
        }
        for var in c.env.iter().flatten() {
            let Some(from) = &var.value_from else {
                continue;
            };
            if let Some(r) = &from.config_map_key_ref {
                out.insert((SourceKind::ConfigMap, r.name.clone()));
            }
            if let Some(r) = &from.secret_key_ref {
                out.insert((SourceKind::Secret, r.name.clone()));
            }
        }
    }
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(cm) = &volume.config_map {
            out.insert((SourceKind::ConfigMap, cm.name.clone()));
        }
        if let Some(secret) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            out.insert((SourceKind::Secret, secret));
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(cm) = &source.config_map {
                out.insert((SourceKind::ConfigMap, cm.name.clone()));
            }
            if let Some(secret) = &source.secret {
                out.insert((SourceKind::Secret, secret.name.clone()));
            }
        }
    }
    out
}

fn containers(pod: &Pod) -> impl Iterator<Item = &PodContainer> {
    pod.spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    })
}

/// Resolves `container`'s environment against `sources`.
///
/// Returns the result and every missing reference; the pod must not be created if any of them
/// is not optional.
pub fn resolve(
    pod: &Pod,
    container: &PodContainer,
    sources: &Sources,
    host_ip: &str,
) -> (Resolved, Vec<Missing>) {
    let mut missing = Vec::new();
    let mut vars: Vec<EnvironmentVar> = Vec::new();
    // Service variables can be used in `$(VAR)`; the container's own variables win.
    let services = service_env(&sources.services);
    let mut values: HashMap<String, String> = services.iter().cloned().collect();
    let lookup = |kind: SourceKind, name: &str| {
        sources
            .objects
            .get(&(kind, name.to_owned()))
            .cloned()
            .flatten()
    };

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let refs = [
            from.config_map_ref.as_ref().map(|r| {
                (
                    SourceKind::ConfigMap,
                    r.name.clone(),
                    r.optional == Some(true),
                )
            }),
            from.secret_ref
                .as_ref()
                .map(|r| (SourceKind::Secret, r.name.clone(), r.optional == Some(true))),
        ];
        for (kind, name, optional) in refs.into_iter().flatten() {
            match lookup(kind, &name) {
                Some(data) => {
                    for (key, value) in data {
                        set(
                            &mut vars,
                            &mut values,
                            literal(format!("{prefix}{key}"), value),
                        );
                    }
                }
                None => missing.push(Missing {
                    kind,
                    name,
                    key: None,
                    optional,
                    container: container.name.clone(),
                }),
            }
        }
    }

    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            let expanded = expand(var.value.as_deref().unwrap_or_default(), &values);
            set(&mut vars, &mut values, literal(var.name.clone(), expanded));
            continue;
        };
        let key_ref = from
            .config_map_key_ref
            .as_ref()
            .map(|r| {
                (
                    SourceKind::ConfigMap,
                    &r.name,
                    &r.key,
                    r.optional == Some(true),
                )
            })
            .or_else(|| {
                from.secret_key_ref.as_ref().map(|r| {
                    (
                        SourceKind::Secret,
                        &r.name,
                        &r.key,
                        r.optional == Some(true),
                    )
                })
            });
        if let Some((kind, name, key, optional)) = key_ref {
            match lookup(kind, name).and_then(|data| data.get(key).cloned()) {
                Some(value) => set(&mut vars, &mut values, literal(var.name.clone(), value)),
                None => missing.push(Missing {
                    kind,
                    name: name.clone(),
                    key: Some(key.clone()),
                    optional,
                    container: container.name.clone(),
                }),
            }
            continue;
        }
        if let Some(selector) = &from.resource_field_ref {
            if let Some(value) = resource_value(pod, container, selector) {
                set(&mut vars, &mut values, literal(var.name.clone(), value));
            }
            continue;
        }
        if let Some(field) = &from.field_ref {
            match field_value(pod, &field.field_path, host_ip) {
                FieldValue::Known(value) => {
                    set(&mut vars, &mut values, literal(var.name.clone(), value))
                }
                // Known only once the group has an address: ECI fills it in.
                FieldValue::Cloud => set(
                    &mut vars,
                    &mut values,
                    EnvironmentVar {
                        key: var.name.clone(),
                        value: None,
                        field_ref: Some(FieldRef {
                            field_path: field.field_path.clone(),
                        }),
                    },
                ),
                FieldValue::Unsupported => set(
                    &mut vars,
                    &mut values,
                    literal(var.name.clone(), String::new()),
                ),
            }
        }
    }

    for (key, value) in services {
        if !vars.iter().any(|v| v.key == key) {
            vars.push(literal(key, value));
        }
    }
    let command = container
        .command
        .iter()
        .flatten()
        .map(|s| expand(s, &values))
        .collect();
    let args = container
        .args
        .iter()
        .flatten()
        .map(|s| expand(s, &values))
        .collect();
    (
        Resolved {
            vars,
            command,
            args,
        },
        missing,
    )
}

/// Sets (or overrides) a variable, remembering its value for `$(NAME)` expansion.
fn set(vars: &mut Vec<EnvironmentVar>, values: &mut HashMap<String, String>, var: EnvironmentVar) {
    if let Some(value) = &var.value {
        values.insert(var.key.clone(), value.clone());
    }
    match vars.iter_mut().find(|v| v.key == var.key) {
        Some(existing) => *existing = var,
        None => vars.push(var),
    }
}

fn literal(key: String, value: String) -> EnvironmentVar {
    EnvironmentVar {
        key,
        value: Some(value),
        field_ref: None,
    }
}

/// A downward-API field's value as text, if it is known before the group exists.
pub fn field_text(pod: &Pod, path: &str, host_ip: &str) -> Option<String> {
    match field_value(pod, path, host_ip) {
        FieldValue::Known(value) => Some(value),
        FieldValue::Cloud | FieldValue::Unsupported => None,
    }
}

enum FieldValue {
    Known(String),
    Cloud,
    Unsupported,
}

/// A container's resource as the downward API gives it (`resourceFieldRef`): the limit, or the
/// request when there is no limit (on ECI a container without either gets a share of the
/// instance's size, which is not known here: the variable is then left unset), divided by the
/// divisor (default 1) and rounded up, as a kubelet does.
fn resource_value(
    pod: &Pod,
    current: &PodContainer,
    selector: &k8s_openapi::api::core::v1::ResourceFieldSelector,
) -> Option<String> {
    let container = match selector.container_name.as_deref() {
        Some(name) if !name.is_empty() => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .chain(pod.spec.as_ref()?.init_containers.iter().flatten())
            .find(|c| c.name == name)?,
        _ => current,
    };
    let (kind, resource) = selector.resource.split_once('.')?;
    let resources = container.resources.as_ref()?;
    let pick = |map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        map.as_ref()
            .and_then(|m| m.get(resource))
            .map(|q| q.0.clone())
    };
    let quantity = match kind {
        "limits" => pick(&resources.limits).or_else(|| pick(&resources.requests)),
        "requests" => pick(&resources.requests),
        _ => None,
    }?;
    // Cores for `cpu`, bytes for memory and storage: the number the quantity names.
    let parse = |q: &str| crate::quantity::parse(q).ok().map(|q| q.value());
    let amount = parse(&quantity)?;
    let divisor = selector
        .divisor
        .as_ref()
        .and_then(|d| parse(&d.0))
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    Some(format!("{}", (amount / divisor).ceil()))
}

fn field_value(pod: &Pod, path: &str, host_ip: &str) -> FieldValue {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let map_key = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_owned)
    };
    let known = |v: Option<String>| FieldValue::Known(v.unwrap_or_default());
    match path {
        "metadata.name" => known(meta.name.clone()),
        "metadata.namespace" => known(meta.namespace.clone()),
        "metadata.uid" => known(meta.uid.clone()),
        "spec.nodeName" => known(spec.and_then(|s| s.node_name.clone())),
        "spec.serviceAccountName" => known(spec.and_then(|s| s.service_account_name.clone())),
        "status.hostIP" => FieldValue::Known(host_ip.to_owned()),
        "status.podIP" | "status.podIPs" => FieldValue::Cloud,
        _ => {
            if let Some(key) = map_key("metadata.labels['") {
                known(meta.labels.as_ref().and_then(|l| l.get(&key).cloned()))
            } else if let Some(key) = map_key("metadata.annotations['") {
                known(meta.annotations.as_ref().and_then(|a| a.get(&key).cloned()))
            } else {
                FieldValue::Unsupported
            }
        }
    }
}

/// `$(NAME)` → the value of `NAME` if defined (else left as is); `$$` → `$`.
pub fn expand(text: &str, values: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match values.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_yaml_ng::from_str(
            r#"
metadata: {name: p, namespace: ns, uid: u1, labels: {app: web}}
spec:
  nodeName: vk
  containers:
  - name: main
    image: busybox
    command: [echo, "$(GREETING) $(WHO)", "$$(KEEP)", "$(UNDEFINED)"]
    envFrom:
    - configMapRef: {name: base}
      prefix: CM_
    - secretRef: {name: gone, optional: true}
    env:
    - {name: WHO, value: world}
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: base, key: hello}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MISSING, valueFrom: {secretKeyRef: {name: creds, key: nope, optional: true}}}
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: BOTH, value: "$(WHO)-$(POD)"}
"#,
        )
        .expect("fixture")
    }

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.objects.insert(
            (SourceKind::ConfigMap, "base".into()),
            Some([("hello".to_owned(), "hi".to_owned())].into()),
        );
        s.objects.insert(
            (SourceKind::Secret, "creds".into()),
            Some([("password".to_owned(), "s3cret".to_owned())].into()),
        );
        s.objects.insert((SourceKind::Secret, "gone".into()), None);
        s
    }

    fn value<'a>(r: &'a Resolved, key: &str) -> Option<&'a str> {
        r.vars
            .iter()
            .find(|v| v.key == key)
            .and_then(|v| v.value.as_deref())
    }

    #[test]
    fn env_resolves_in_order_with_expansion() {
        let pod = pod();
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        let (r, missing) = resolve(&pod, container, &sources(), "10.0.0.1");
        assert_eq!(value(&r, "CM_hello"), Some("hi"));
        assert_eq!(value(&r, "GREETING"), Some("hi"));
        assert_eq!(value(&r, "PASSWORD"), Some("s3cret"));
        assert_eq!(value(&r, "POD"), Some("p"));
        assert_eq!(value(&r, "APP"), Some("web"));
        assert_eq!(value(&r, "BOTH"), Some("world-p"));
        let ip = r.vars.iter().find(|v| v.key == "IP").expect("IP");
        assert_eq!(
            ip.field_ref.as_ref().map(|f| f.field_path.as_str()),
            Some("status.podIP")
        );
        assert_eq!(r.command, ["echo", "hi world", "$(KEEP)", "$(UNDEFINED)"]);
        assert_eq!(value(&r, "MISSING"), None);
        assert_eq!(missing.len(), 2);
        assert!(missing.iter().all(|m| m.optional));
        assert_eq!(
            missing[0].kind.missing_reason(true),
            "OptionalSecretNotFound"
        );
    }

    #[test]
    fn a_missing_mandatory_secret_is_reported_without_values() {
        let pod = pod();
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        let mut s = sources();
        s.objects.insert((SourceKind::Secret, "creds".into()), None);
        let (_, missing) = resolve(&pod, container, &s, "10.0.0.1");
        let mandatory: Vec<_> = missing.iter().filter(|m| !m.optional).collect();
        assert_eq!(mandatory.len(), 1);
        assert_eq!(
            mandatory[0].kind.missing_reason(false),
            "MandatorySecretNotFound"
        );
        assert!(!mandatory[0].note().contains("s3cret"));
        assert!(references(&pod).contains(&(SourceKind::Secret, "creds".to_owned())));
    }

    #[test]
    fn expansion_edge_cases() {
        let values: HashMap<String, String> = [("A".to_owned(), "1".to_owned())].into();
        assert_eq!(expand("$(A)$(A)", &values), "11");
        assert_eq!(expand("$$(A)", &values), "$(A)");
        assert_eq!(expand("$(A", &values), "$(A");
        assert_eq!(expand("cost $5", &values), "cost $5");
    }

    #[test]
    fn resource_fields_are_rounded_up_by_their_divisor() {
        let pod: Pod = serde_yaml_ng::from_str(
            r#"
metadata: {name: p, namespace: default}
spec:
  containers:
  - name: main
    image: busybox
    resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {memory: 128Mi}}
    env:
    - {name: CPU_M, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
    - {name: CPU, valueFrom: {resourceFieldRef: {resource: requests.cpu}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: OTHER, valueFrom: {resourceFieldRef: {containerName: main, resource: requests.memory}}}
"#,
        )
        .expect("pod");
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        let (resolved, missing) = resolve(&pod, container, &Sources::default(), "10.0.0.1");
        assert!(missing.is_empty());
        let value = |k: &str| {
            resolved
                .vars
                .iter()
                .find(|v| v.key == k)
                .and_then(|v| v.value.clone())
        };
        assert_eq!(value("CPU_M").as_deref(), Some("250"));
        assert_eq!(value("CPU").as_deref(), Some("1"));
        assert_eq!(value("MEM_MI").as_deref(), Some("128"));
        assert_eq!(value("OTHER").as_deref(), Some("67108864"));
    }

    fn kubernetes_and_db() -> Vec<ServiceLink> {
        vec![
            ServiceLink {
                name: "kubernetes".into(),
                host: "192.168.1.5".into(),
                ports: vec![("https".into(), 6443, "TCP".into())],
            },
            ServiceLink {
                name: "my-db".into(),
                host: "10.96.0.20".into(),
                ports: vec![
                    ("sql".into(), 5432, "TCP".into()),
                    (String::new(), 9187, "UDP".into()),
                ],
            },
        ]
    }

    #[test]
    fn service_links_are_spelt_as_a_kubelet_spells_them() {
        let env: HashMap<String, String> = service_env(&kubernetes_and_db()).into_iter().collect();
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("KUBERNETES_SERVICE_HOST"), Some("192.168.1.5"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT"), Some("6443"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT_HTTPS"), Some("6443"));
        assert_eq!(get("KUBERNETES_PORT"), Some("tcp://192.168.1.5:6443"));
        assert_eq!(
            get("KUBERNETES_PORT_6443_TCP"),
            Some("tcp://192.168.1.5:6443")
        );
        assert_eq!(get("MY_DB_SERVICE_HOST"), Some("10.96.0.20"));
        assert_eq!(get("MY_DB_SERVICE_PORT_SQL"), Some("5432"));
        assert_eq!(get("MY_DB_PORT_9187_UDP_PROTO"), Some("udp"));
        assert_eq!(get("MY_DB_PORT_9187_UDP_PORT"), Some("9187"));
        assert_eq!(get("MY_DB_PORT_5432_TCP_ADDR"), Some("10.96.0.20"));
        assert_eq!(env.len(), 8 + 12);
    }

    #[test]
    fn a_containers_own_variables_win_and_links_expand() {
        let pod: Pod = serde_yaml_ng::from_str(
            r#"
metadata: {name: a, namespace: b}
spec:
  containers:
  - name: c
    image: i
    command: [echo, "$(MY_DB_SERVICE_HOST)"]
    env:
    - {name: MY_DB_SERVICE_PORT, value: "1"}
    - {name: URL, value: "http://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"}
"#,
        )
        .expect("fixture pod");
        let sources = Sources {
            services: kubernetes_and_db(),
            ..Sources::default()
        };
        let (resolved, _) = resolve(
            &pod,
            &pod.spec.as_ref().expect("spec").containers[0],
            &sources,
            "",
        );
        let value = |k: &str| {
            resolved
                .vars
                .iter()
                .filter(|v| v.key == k)
                .map(|v| v.value.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(value("MY_DB_SERVICE_PORT"), ["1"]);
        assert_eq!(value("URL"), ["http://192.168.1.5:6443"]);
        assert_eq!(value("KUBERNETES_SERVICE_HOST"), ["192.168.1.5"]);
        assert_eq!(resolved.command, ["echo", "10.96.0.20"]);
        assert_eq!(
            resolved.vars[0].key, "MY_DB_SERVICE_PORT",
            "own variables first"
        );
    }
}
