//! Which groups run from which snapshots, and which snapshots are deleted or being deleted.
//!
//! One value behind one lock, so that "is it in use?" and "mark it deleted" are one decision:
//! a group that starts from a snapshot registers itself before it reads the snapshot, and a
//! delete that finds no user marks the snapshot `deleting` before it removes the directory,
//! so neither can slip in between the other's check and its action. (The kubelet's volume
//! manager and containerd's garbage collector decide under one lock the same way.)

use std::collections::{HashMap, HashSet};

/// What [`SnapshotUsage::request_delete`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeleteDecision {
    /// No group uses it: the caller removes it now and then calls
    /// [`SnapshotUsage::finish_delete`].
    DeleteNow,
    /// Groups run from it: it is hidden now and freed by the release of its last user.
    Deferred,
}

/// Users and deletions of snapshots.
#[derive(Debug, Default)]
pub(crate) struct SnapshotUsage {
    /// Snapshot id → the groups running from it.
    users: HashMap<String, HashSet<String>>,
    /// Deleted while in use; freed when the last user goes.
    doomed: HashSet<String>,
    /// Being removed from disk right now.
    deleting: HashSet<String>,
}

impl SnapshotUsage {
    /// Whether `snapshot` was deleted (or is being deleted): nothing new may use it.
    pub(crate) fn is_gone(&self, snapshot: &str) -> bool {
        self.doomed.contains(snapshot) || self.deleting.contains(snapshot)
    }

    /// Registers `group` as a user of every snapshot in `snapshots`, or of none when one of
    /// them is deleted: then that one is returned.
    pub(crate) fn claim<'a>(
        &mut self,
        group: &str,
        snapshots: impl IntoIterator<Item = &'a String> + Clone,
    ) -> Result<(), String> {
        if let Some(gone) = snapshots.clone().into_iter().find(|s| self.is_gone(s)) {
            return Err(gone.clone());
        }
        for snapshot in snapshots {
            self.users
                .entry(snapshot.clone())
                .or_default()
                .insert(group.to_owned());
        }
        Ok(())
    }

    /// Decides how a delete of `snapshot` goes (see [`DeleteDecision`]).
    pub(crate) fn request_delete(&mut self, snapshot: &str) -> DeleteDecision {
        let in_use = self.users.get(snapshot).is_some_and(|g| !g.is_empty());
        if in_use {
            self.doomed.insert(snapshot.to_owned());
            DeleteDecision::Deferred
        } else {
            self.deleting.insert(snapshot.to_owned());
            DeleteDecision::DeleteNow
        }
    }

    /// Forgets `group` as a user of any snapshot; returns the deleted snapshots it was the
    /// last user of, now marked `deleting`: the caller removes each and calls
    /// [`Self::finish_delete`].
    pub(crate) fn release(&mut self, group: &str) -> Vec<String> {
        let mut free = Vec::new();
        let doomed = &mut self.doomed;
        let deleting = &mut self.deleting;
        self.users.retain(|snapshot, groups| {
            groups.remove(group);
            if groups.is_empty() {
                if doomed.remove(snapshot) {
                    deleting.insert(snapshot.clone());
                    free.push(snapshot.clone());
                }
                return false;
            }
            true
        });
        free
    }

    /// The removal of `snapshot` is over (done or failed): its id may be built again.
    pub(crate) fn finish_delete(&mut self, snapshot: &str) {
        self.deleting.remove(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_snapshot_in_use_is_freed_by_its_last_user() {
        let mut usage = SnapshotUsage::default();
        usage.claim("eci-1", &ids(&["s-1"])).unwrap();
        usage.claim("eci-2", &ids(&["s-1", "s-2"])).unwrap();
        assert_eq!(usage.request_delete("s-1"), DeleteDecision::Deferred);
        // Deleted: no new group may start from it, even while old ones run.
        assert_eq!(
            usage.claim("eci-3", &ids(&["s-2", "s-1"])),
            Err("s-1".into())
        );
        assert!(usage.release("eci-3").is_empty());
        assert!(usage.release("eci-1").is_empty());
        assert_eq!(usage.release("eci-2"), ["s-1"]);
        assert!(usage.is_gone("s-1"));
        usage.finish_delete("s-1");
        assert!(!usage.is_gone("s-1"));
        assert_eq!(usage.request_delete("s-2"), DeleteDecision::DeleteNow);
    }

    #[test]
    fn a_group_cannot_start_from_a_snapshot_being_removed() {
        let mut usage = SnapshotUsage::default();
        assert_eq!(usage.request_delete("s-1"), DeleteDecision::DeleteNow);
        // The removal runs without the lock; a group asking meanwhile is refused and
        // registers nothing.
        assert_eq!(usage.claim("eci-1", &ids(&["s-1"])), Err("s-1".into()));
        assert!(usage.users.is_empty());
        usage.finish_delete("s-1");
        usage.claim("eci-1", &ids(&["s-1"])).unwrap();
        assert_eq!(usage.request_delete("s-1"), DeleteDecision::Deferred);
    }
}
