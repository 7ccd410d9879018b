//! A zone whose vSwitches were all taken away is drained the way a cordon does it: the Node
//! becomes unschedulable, so the scheduler sends no new pod there, while the pods already
//! running are left alone; an Event on the Node says why, and another when the zone comes back.
//!
//! `spec.unschedulable` is applied under its own field manager, [`DRAIN_MANAGER`], so giving
//! the zone back releases only this node's claim: a cordon an administrator made with
//! `kubectl cordon` (another manager) stays.

use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client, Resource as _,
    api::{Patch, PatchParams},
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{API_TIMEOUT, FIELD_MANAGER};

/// The field manager of the drain's `spec.unschedulable`.
pub const DRAIN_MANAGER: &str = "eci-virtual-kubelet-zone-drain";

/// Keeps Node `name` cordoned while `drained` holds a reason (why its zone has no vSwitch) and
/// uncordoned when it holds none, until `stop`. A write that fails is tried again at the next
/// change, or after a minute.
pub async fn keep_drained(
    kube: Client,
    name: String,
    mut drained: watch::Receiver<Option<String>>,
    stop: impl Future<Output = ()>,
) {
    let api: Api<Node> = Api::all(kube.clone());
    let recorder = Recorder::new(
        kube,
        Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: None,
        },
    );
    let mut applied: Option<bool> = None;
    let run = async {
        loop {
            let why = drained.borrow_and_update().clone();
            let want = why.is_some();
            if applied != Some(want) {
                match apply(&api, &recorder, &name, why.as_deref()).await {
                    Ok(()) => applied = Some(want),
                    Err(error) => {
                        warn!(node.name = %name, error = %error, "cannot apply the zone's drain to the Node");
                    }
                }
            }
            let retry = applied != Some(want);
            tokio::select! {
                changed = drained.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(std::time::Duration::from_secs(60)), if retry => {}
            }
        }
    };
    tokio::select! {
        () = run => {}
        () = stop => {}
    }
}

/// Applies the drain (`why`) or its end (`None`) and records the Event.
async fn apply(
    api: &Api<Node>,
    recorder: &Recorder,
    name: &str,
    why: Option<&str>,
) -> Result<(), kube::Error> {
    // Applying no `unschedulable` under this manager releases the field: it goes away unless
    // another manager (an administrator's cordon) set it too.
    let spec = match why {
        Some(_) => serde_json::json!({"unschedulable": true}),
        None => serde_json::json!({}),
    };
    let patch = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec});
    let node = tokio::time::timeout(
        API_TIMEOUT,
        api.patch(
            name,
            &PatchParams::apply(DRAIN_MANAGER).force(),
            &Patch::Apply(&patch),
        ),
    )
    .await
    .map_err(|_| kube::Error::Service("the API server did not answer in time".into()))??;
    let (reason, note, type_) = match why {
        Some(why) => {
            info!(node.name = %name, why, "zone drained: the Node is cordoned, its running pods stay");
            ("ZoneDrained", why.to_owned(), EventType::Warning)
        }
        None => {
            info!(node.name = %name, "zone has vSwitches again: the Node takes new pods");
            (
                "ZoneRestored",
                "the zone has vSwitches again in the eci-profile: the node takes new pods"
                    .to_owned(),
                EventType::Normal,
            )
        }
    };
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Drain".to_owned(),
        secondary: None,
    };
    if let Err(error) =
        tokio::time::timeout(API_TIMEOUT, recorder.publish(&event, &node.object_ref(&())))
            .await
            .unwrap_or_else(|_| Err(kube::Error::Service("timed out".into())))
    {
        warn!(node.name = %name, error = %error, "zone drain event not written");
    }
    Ok(())
}
