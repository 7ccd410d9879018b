//! Every field of the table, in a pod that uses it, meets its fate; the README lists them all.

use serde_json::{Map, Value, json};

use super::*;

/// A pod spec (JSON) with one container, one init container and one volume, where `path` is
/// set to `value`.
fn spec_with(path: &str, value: Value) -> Value {
    let mut spec = json!({});
    let rest = path.strip_prefix("spec.").unwrap_or(path);
    let mut node = &mut spec;
    let parts: Vec<&str> = rest.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let (key, list) = match part.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (*part, false),
        };
        let object = node.as_object_mut().expect("an object on the way");
        if last && !list {
            object.insert(key.to_owned(), value.clone());
            break;
        }
        let entry = object.entry(key.to_owned()).or_insert_with(|| {
            if list {
                json!([{}])
            } else {
                Value::Object(Map::new())
            }
        });
        node = if list { &mut entry[0] } else { entry };
        if last {
            *node = value.clone();
        }
    }
    spec
}

fn sample(field: &Field) -> Value {
    match field.trigger {
        Trigger::False => Value::Bool(false),
        Trigger::Any | Trigger::Set => json!({"x": 1}),
    }
}

#[test]
fn every_field_meets_its_fate_in_a_pod_that_uses_it() {
    let fields = table();
    assert!(fields.len() > 150, "both container lists are expanded");
    for field in fields {
        let spec = spec_with(&field.path, sample(&field));
        let mut review = Review::default();
        review_value(&spec, &mut review);
        let at = field.path.replace("[]", "[0]");
        // A field below a warned one is reported with it (`…lifecycle` of an init container).
        let named = |list: &[Finding]| {
            list.iter().any(|f| {
                f.path == at || (at.starts_with(&f.path) && at[f.path.len()..].starts_with('.'))
            })
        };
        match field.fate {
            Fate::Mapped(_) | Fate::Kept(_) => assert!(
                !named(&review.warnings) && !named(&review.refusals),
                "{} is {:?} but was reported: {review:?}",
                field.path,
                field.fate
            ),
            Fate::Warned(_) => assert!(
                named(&review.warnings) && review.refusals.is_empty(),
                "{} must be warned: {review:?}",
                field.path
            ),
            Fate::Refused(_) => assert!(
                named(&review.refusals),
                "{} must be refused: {review:?}",
                field.path
            ),
        }
    }
}

#[test]
fn defaults_and_false_values_ask_for_nothing() {
    let spec = json!({"hostNetwork": false, "hostPID": false, "hostUsers": true,
        "containers": [{"name": "c", "stdin": false, "securityContext": {"privileged": false}}],
        "initContainers": [{"name": "i", "tty": false, "readinessProbe": null}]});
    let mut review = Review::default();
    review_value(&spec, &mut review);
    assert_eq!(review, Review::default());
    let spec = json!({"hostUsers": false});
    review_value(&spec, &mut review);
    assert_eq!(review.warnings[0].path, "spec.hostUsers");
}

fn pod(yaml: &str) -> Pod {
    serde_yaml_ng::from_str(yaml).expect("fixture pod")
}

#[test]
fn a_typed_pod_names_the_fields_it_loses() {
    let review = review(&pod(r#"
metadata: {name: a, namespace: b, uid: u}
spec:
  containers:
  - name: web
    image: nginx
    startupProbe: {httpGet: {path: /, port: 80}}
    readinessProbe: {grpc: {port: 9000}}
    livenessProbe: {httpGet: {path: /, port: 80}}
    lifecycle: {preStop: {sleep: {seconds: 3}}, postStart: {httpGet: {path: /, port: 80}}}
    securityContext: {capabilities: {add: [NET_ADMIN], drop: [ALL]}, runAsUser: 1000}
"#));
    let paths: Vec<&str> = review.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.containers[0].lifecycle.preStop.sleep",
            "spec.containers[0].readinessProbe.grpc",
            "spec.containers[0].securityContext.capabilities.drop",
            "spec.containers[0].startupProbe",
        ]
    );
    assert!(review.refusals.is_empty());
    assert!(review.warnings[3].message().contains("no startup probe"));
    let note = warning_note(&review.warnings);
    assert!(note.contains("spec.containers[0].startupProbe: ECI has no startup probe"));
    assert!(note.contains("spec.containers[0].readinessProbe.grpc"));
}

#[test]
fn unknown_and_host_volumes_are_refused() {
    let review = review(&pod(r#"
metadata: {name: a, namespace: b, uid: u}
spec:
  containers: [{name: web, image: nginx}]
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
  - {name: cfg, configMap: {name: cfg}}
  - {name: ext, csi: {driver: x.example.com}}
  - {name: host, hostPath: {path: /var}}
"#));
    let refused: Vec<&str> = review.refusals.iter().map(|r| r.path.as_str()).collect();
    // A CSI volume is the storage mapping's to judge by its driver (`pods::storage`): this
    // table lets it through, and the volume mapping refuses an unknown driver.
    assert_eq!(refused, ["spec.volumes[3].hostPath"]);
    assert!(review.warnings.is_empty(), "{review:?}");
    let csi = pod(r#"
metadata: {name: a, namespace: b, uid: u}
spec:
  containers: [{name: web, image: nginx}]
  volumes:
  - {name: ext, csi: {driver: x.example.com}}
"#);
    let mapped = super::super::volumes::map(&csi, &Default::default(), "10.0.0.1");
    let refused: Vec<(&str, &str)> = mapped
        .refused
        .iter()
        .map(|r| (r.volume.as_str(), r.kind.as_str()))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "ext");
    assert!(refused[0].1.contains("x.example.com"), "{refused:?}");
}

#[test]
fn the_readme_lists_every_field_with_its_fate() {
    let readme = include_str!("../../../README.md");
    let tables = markdown();
    for field in table().iter() {
        let short = field
            .path
            .strip_prefix("spec.containers[].")
            .or_else(|| field.path.strip_prefix("spec.initContainers[]."))
            .unwrap_or(&field.path);
        assert!(
            readme.contains(&format!("| `{short}` |")),
            "README.md does not list {short}"
        );
    }
    assert!(
        readme.contains(&tables),
        "README.md's field tables differ from pods::fields::markdown(); paste its output \
         (cargo test --lib print_field_tables -- --ignored --nocapture)"
    );
}

#[test]
#[ignore = "prints the README's tables"]
fn print_field_tables() {
    println!("{}", markdown());
}
