//! The profile in force ([`ProfileHandle`]) and the watch that keeps it current ([`follow`]).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Resource as _, ResourceExt as _,
    runtime::{
        WatchStreamExt as _,
        events::{Event, EventType, Recorder, Reporter},
        watcher,
    },
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::parse::{Profile, parse};

/// The reporter of the profile's events.
const REPORTER: &str = "eci-virtual-kubelet";
/// Limit on one event write.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest note of an event (the API server's limit is 1 kB).
const MAX_NOTE: usize = 1000;

/// The last good profile, shared: cheap to clone, read with [`ProfileHandle::current`].
#[derive(Debug, Clone)]
pub struct ProfileHandle {
    current: Arc<watch::Sender<Arc<Profile>>>,
}

impl Default for ProfileHandle {
    fn default() -> Self {
        Self::new(Profile::default())
    }
}

impl ProfileHandle {
    /// A handle holding `profile` (the node starts with [`Profile::default`]).
    pub fn new(profile: Profile) -> Self {
        Self {
            current: Arc::new(watch::Sender::new(Arc::new(profile))),
        }
    }

    /// The profile in force now.
    pub fn current(&self) -> Arc<Profile> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every profile put in force from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Profile>> {
        self.current.subscribe()
    }

    /// Puts `profile` in force.
    pub fn replace(&self, profile: Profile) {
        self.current.send_replace(Arc::new(profile));
    }
}

/// Follows the ConfigMap `namespace/name` until `stop`, keeping `handle` at its last good
/// version.
///
/// # Expected flow
/// Each version the watch delivers is parsed ([`parse`]). A good one is put in force and what
/// changed is logged at info. A bad one leaves the last good profile in force: a log line and
/// a Warning event `InvalidProfile` on the ConfigMap name each bad key. The warnings of a good
/// one (keys not acted on, unknown keys) become one Warning event `ProfileKeyIgnored`. A
/// deleted (or absent) ConfigMap puts the defaults back in force, and says so in the log.
///
/// # Guarantees
/// Events are written once per `resourceVersion` by this process, even when the watch lists
/// the ConfigMap again. Watch errors are logged and retried with kube's default backoff, never
/// dropped silently.
///
/// # Caveats
/// Events are written with `kube`; the node passes its leader-gated client, so that only the
/// replica leading the node writes them while every replica follows the profile. An event that
/// cannot be written is logged at debug.
pub async fn follow(
    kube: kube::Client,
    namespace: String,
    name: String,
    handle: ProfileHandle,
    stop: impl Future<Output = ()>,
) {
    let api: Api<ConfigMap> = Api::namespaced(kube.clone(), &namespace);
    let recorder = Recorder::new(
        kube,
        Reporter {
            controller: REPORTER.to_owned(),
            instance: None,
        },
    );
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut state = Follower {
        namespace,
        name,
        handle,
        recorder,
        seen_version: None,
        listed: false,
    };
    info!(profile.namespace = %state.namespace, profile.name = %state.name, "following the eci-profile");
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            () = &mut stop => break,
            event = events.next() => event,
        };
        match event {
            Some(Ok(watcher::Event::Init)) => state.listed = false,
            Some(Ok(watcher::Event::InitApply(map) | watcher::Event::Apply(map))) => {
                state.listed = true;
                state.apply(&map).await;
            }
            Some(Ok(watcher::Event::InitDone)) => {
                if !state.listed {
                    state.absent("no ConfigMap");
                }
            }
            Some(Ok(watcher::Event::Delete(_))) => state.absent("the ConfigMap was deleted"),
            Some(Err(error)) => warn!(
                error = &error as &dyn std::error::Error,
                profile.name = %state.name,
                "eci-profile watch failed; retrying with backoff (the profile in force stays)"
            ),
            None => break,
        }
    }
}

/// What [`follow`] keeps between versions.
struct Follower {
    namespace: String,
    name: String,
    handle: ProfileHandle,
    recorder: Recorder,
    /// The `resourceVersion` last handled (its events written).
    seen_version: Option<String>,
    /// Whether the current list (since the last `Init`) held the ConfigMap.
    listed: bool,
}

impl Follower {
    async fn apply(&mut self, map: &ConfigMap) {
        let version = map.resource_version();
        if version.is_some() && version == self.seen_version {
            return;
        }
        self.seen_version.clone_from(&version);
        let data: BTreeMap<String, String> = map.data.clone().unwrap_or_default();
        let version = version.unwrap_or_default();
        match parse(&data) {
            Ok((profile, warnings)) => {
                let old = self.handle.current();
                let changed = changes(&old, &profile);
                if !changed.is_empty() {
                    info!(profile.name = %self.name, profile.version = %version, changes = %changed.join("; "), "eci-profile in force");
                }
                self.handle.replace(profile);
                if !warnings.is_empty() {
                    info!(profile.name = %self.name, keys = %warnings.join("; "), "eci-profile keys not acted on");
                    self.event(
                        map,
                        "ProfileKeyIgnored",
                        &format!("Not acted on by this node: {}", warnings.join("; ")),
                    )
                    .await;
                }
            }
            Err(errors) => {
                warn!(profile.name = %self.name, profile.version = %version, errors = %errors.join("; "), "eci-profile is invalid; the last good profile stays in force");
                self.event(
                    map,
                    "InvalidProfile",
                    &format!(
                        "The last good profile stays in force: {}",
                        errors.join("; ")
                    ),
                )
                .await;
            }
        }
    }

    fn absent(&mut self, why: &str) {
        self.seen_version = None;
        if *self.handle.current() != Profile::default() {
            info!(profile.namespace = %self.namespace, profile.name = %self.name, "{why}: the eci-profile's defaults are in force (no overrides, no selectors)");
        } else {
            debug!(profile.name = %self.name, "{why}: the defaults stay in force");
        }
        self.handle.replace(Profile::default());
    }

    async fn event(&self, map: &ConfigMap, reason: &str, note: &str) {
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(note.chars().take(MAX_NOTE).collect()),
            action: "Validate".to_owned(),
            secondary: None,
        };
        let reference = map.object_ref(&());
        match tokio::time::timeout(EVENT_TIMEOUT, self.recorder.publish(&event, &reference)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => debug!(
                error = &error as &dyn std::error::Error,
                reason, "eci-profile event not written"
            ),
            Err(_) => debug!(reason, "eci-profile event write timed out"),
        }
    }
}

/// What differs between two profiles, one entry per key, for the log.
pub(super) fn changes(old: &Profile, new: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    let compare = |out: &mut Vec<String>, key: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{key}: {a} → {b}"));
        }
    };
    compare(
        &mut out,
        "securityGroupId",
        format!("{:?}", old.security_group_id),
        format!("{:?}", new.security_group_id),
    );
    compare(
        &mut out,
        "vSwitchIds",
        format!("{:?}", old.vswitch_ids),
        format!("{:?}", new.vswitch_ids),
    );
    compare(
        &mut out,
        "vpcId",
        format!("{:?}", old.vpc_id),
        format!("{:?}", new.vpc_id),
    );
    if old.selectors != new.selectors {
        let names = |p: &Profile| {
            format!(
                "[{}]",
                p.selectors
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push(format!("selectors: {} → {}", names(old), names(new)));
    }
    compare(
        &mut out,
        "switches",
        format!("{:?}", old.switches),
        format!("{:?}", new.switches),
    );
    compare(
        &mut out,
        "featureGates",
        format!("{:?}", old.feature_gates),
        format!("{:?}", new.feature_gates),
    );
    compare(
        &mut out,
        "slsMachineGroup",
        format!("{:?}", old.sls_machine_group),
        format!("{:?}", new.sls_machine_group),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_starts_empty_and_keeps_what_it_is_given() {
        let handle = ProfileHandle::default();
        assert_eq!(*handle.current(), Profile::default());
        let clone = handle.clone();
        let seen = handle.subscribe();
        let data = BTreeMap::from([("securityGroupId".to_owned(), "sg-1".to_owned())]);
        let (profile, _) = parse(&data).expect("good");
        clone.replace(profile.clone());
        assert_eq!(*handle.current(), profile);
        assert!(seen.has_changed().expect("open"));
    }

    #[test]
    fn changes_name_each_key() {
        let old = Profile::default();
        let data = BTreeMap::from([
            ("securityGroupId".to_owned(), "sg-1".to_owned()),
            ("selectors".to_owned(), r#"[{"name":"a"}]"#.to_owned()),
        ]);
        let (new, _) = parse(&data).expect("good");
        let changed = changes(&old, &new);
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(changed[0].starts_with("securityGroupId: None → Some(\"sg-1\")"));
        assert_eq!(changed[1], "selectors: [] → [a]");
        assert!(changes(&new, &new).is_empty());
    }
}
