//! A container's security context as ECI takes it, and the security decisions that depend on
//! values rather than on which fields are present (those are in [`super::fields`]).
//!
//! ECI's container security context (<https://www.alibabacloud.com/help/doc-detail/462800.html>,
//! "Configure a security context for a pod or container") takes `runAsUser`, `runAsGroup`,
//! `runAsNonRoot`, `privileged` and `capabilities` per container, plus
//! `SecurityContext.ReadOnlyRootFilesystem` (CreateContainerGroup,
//! <https://www.alibabacloud.com/help/en/eci/api-createcontainergroup>); the pod level takes only
//! sysctls. So the pod's `runAsUser`, `runAsGroup` and `runAsNonRoot` are applied to each
//! container as a kubelet does (the container's own value wins). Init containers take only
//! `SecurityContext.{Capability.Add, ReadOnlyRootFilesystem, RunAsUser}`.
//!
//! The rule: a pod is refused where it would run as root although it asked not to —
//! `runAsNonRoot: true` with `runAsUser: 0` (a kubelet refuses it too), and `runAsNonRoot: true`
//! on an init container without a non-zero `runAsUser` (ECI cannot check the image's user
//! there). Hardening ECI cannot apply (`capabilities.drop`, `allowPrivilegeEscalation`,
//! seccomp, SELinux, AppArmor, a pod-level `runAsGroup` on init containers, which then run with
//! their user's group) is a Warning naming it, not a refusal: each instance is its own VM
//! sandbox, and refusing, say, `drop: [ALL]` would keep most charts off the node.

use k8s_openapi::api::core::v1::{Container as PodContainer, Pod, PodSecurityContext};

use super::fields::Finding;
use crate::eci::container_spec::{Capability, SecurityContext};

/// The user settings of a container after the pod's defaults are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Effective {
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
}

fn effective(pod: Option<&PodSecurityContext>, c: &PodContainer) -> Effective {
    let own = c.security_context.as_ref();
    Effective {
        run_as_user: own
            .and_then(|s| s.run_as_user)
            .or_else(|| pod.and_then(|p| p.run_as_user)),
        run_as_group: own
            .and_then(|s| s.run_as_group)
            .or_else(|| pod.and_then(|p| p.run_as_group)),
        run_as_non_root: own
            .and_then(|s| s.run_as_non_root)
            .or_else(|| pod.and_then(|p| p.run_as_non_root)),
    }
}

fn pod_context(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref().and_then(|s| s.security_context.as_ref())
}

/// The security parameters of one container of `pod`, set on `out` (init containers get only
/// what `InitContainer.N.SecurityContext` has).
pub(super) fn apply(pod: &Pod, c: &PodContainer, init: bool, out: &mut crate::eci::Container) {
    let own = c.security_context.as_ref();
    let user = effective(pod_context(pod), c);
    let add: Vec<String> = own
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|caps| caps.add.clone())
        .unwrap_or_default();
    let context = SecurityContext {
        capability: (!add.is_empty()).then_some(Capability { add }),
        read_only_root_filesystem: own.and_then(|s| s.read_only_root_filesystem).filter(|r| *r),
        run_as_user: user.run_as_user,
    };
    out.security_context = (context != SecurityContext::default()).then_some(context);
    if !init {
        out.security_context_run_as_group = user.run_as_group;
        out.security_context_run_as_non_root = user.run_as_non_root.filter(|n| *n);
        out.security_context_privileged = own.and_then(|s| s.privileged).filter(|p| *p);
    }
}

/// What the security contexts of `pod` ask that cannot be honoured as asked, by value:
/// `(warnings, refusals)`.
pub(super) fn review(pod: &Pod) -> (Vec<Finding>, Vec<Finding>) {
    let mut warnings = Vec::new();
    let mut refusals = Vec::new();
    let Some(spec) = &pod.spec else {
        return (warnings, refusals);
    };
    let pod_sc = pod_context(pod);
    let lists = [
        ("containers", spec.containers.as_slice(), false),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
            true,
        ),
    ];
    for (list, containers, init) in lists {
        for (i, c) in containers.iter().enumerate() {
            let at = format!("spec.{list}[{i}]");
            let user = effective(pod_sc, c);
            if user.run_as_non_root == Some(true) {
                match user.run_as_user {
                    Some(0) => refusals.push(Finding {
                        path: format!("{at}.securityContext.runAsNonRoot"),
                        note: "runAsNonRoot is true and runAsUser is 0 (root)".into(),
                    }),
                    None if init => refusals.push(Finding {
                        path: format!("{at}.securityContext.runAsNonRoot"),
                        note: "ECI init containers cannot check that the image does not run as root; set runAsUser to a non-zero uid".into(),
                    }),
                    _ => {}
                }
            }
            let own_group = c
                .security_context
                .as_ref()
                .and_then(|s| s.run_as_group)
                .is_some();
            if init && !own_group && user.run_as_group.is_some() {
                warnings.push(Finding {
                    path: "spec.securityContext.runAsGroup".into(),
                    note: format!(
                        "ECI init containers have no RunAsGroup: {at} runs with its user's group"
                    ),
                });
            }
        }
    }
    (warnings, refusals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eci::Container;

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).expect("fixture pod")
    }

    fn applied(pod: &Pod, init: bool) -> Container {
        let spec = pod.spec.as_ref().expect("spec");
        let c = if init {
            &spec.init_containers.as_ref().expect("init")[0]
        } else {
            &spec.containers[0]
        };
        let mut out = Container::default();
        apply(pod, c, init, &mut out);
        out
    }

    const SECURE: &str = r#"
metadata: {name: a, namespace: b, uid: u}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 2000, runAsNonRoot: true}
  initContainers:
  - name: i
    image: busybox
    securityContext: {readOnlyRootFilesystem: true, privileged: true}
  containers:
  - name: c
    image: busybox
    securityContext:
      runAsUser: 1001
      readOnlyRootFilesystem: true
      privileged: true
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
"#;

    #[test]
    fn the_containers_own_values_win_over_the_pods() {
        let c = applied(&pod(SECURE), false);
        let sc = c.security_context.expect("a security context");
        assert_eq!(sc.run_as_user, Some(1001));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.capability.map(|c| c.add), Some(vec!["NET_ADMIN".into()]));
        assert_eq!(c.security_context_run_as_group, Some(2000));
        assert_eq!(c.security_context_run_as_non_root, Some(true));
        assert_eq!(c.security_context_privileged, Some(true));
    }

    #[test]
    fn init_containers_get_only_their_parameters() {
        let c = applied(&pod(SECURE), true);
        let sc = c.security_context.expect("a security context");
        assert_eq!(sc.run_as_user, Some(1000));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(c.security_context_run_as_group, None);
        assert_eq!(c.security_context_run_as_non_root, None);
        assert_eq!(c.security_context_privileged, None);
        let (warnings, refusals) = review(&pod(SECURE));
        assert!(refusals.is_empty(), "{refusals:?}");
        assert_eq!(warnings[0].path, "spec.securityContext.runAsGroup");
    }

    #[test]
    fn no_context_sends_none() {
        let p = pod("metadata: {name: a}\nspec: {containers: [{name: c, image: i}]}");
        assert_eq!(applied(&p, false), Container::default());
    }

    #[test]
    fn non_root_as_root_is_refused() {
        let p = pod(
            "metadata: {name: a}\nspec: {containers: [{name: c, image: i, securityContext: {runAsNonRoot: true, runAsUser: 0}}]}",
        );
        let (_, refusals) = review(&p);
        assert_eq!(
            refusals[0].path,
            "spec.containers[0].securityContext.runAsNonRoot"
        );
        // Without a user, ECI checks the image (SecurityContextRunAsNonRoot): allowed.
        let p = pod(
            "metadata: {name: a}\nspec: {containers: [{name: c, image: i, securityContext: {runAsNonRoot: true}}]}",
        );
        assert!(review(&p).1.is_empty());
    }

    #[test]
    fn an_init_container_that_cannot_be_checked_is_refused() {
        let p = pod(
            "metadata: {name: a}\nspec: {securityContext: {runAsNonRoot: true}, initContainers: [{name: i, image: i}], containers: [{name: c, image: i}]}",
        );
        let (_, refusals) = review(&p);
        assert_eq!(refusals.len(), 1);
        assert_eq!(
            refusals[0].path,
            "spec.initContainers[0].securityContext.runAsNonRoot"
        );
    }
}
