//! The pod network: a host bridge holding the first address of the pod CIDR, and per group a
//! network namespace joined to it by a veth pair, with the next free address.
//!
//! Addresses are handed out from memory only: the runtime is the only user of its bridge, and
//! [`Network::remove_leftovers`] clears what a previous agent left, so nothing needs to survive.

use std::{collections::BTreeSet, net::Ipv4Addr, path::PathBuf};

use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};

use super::{RuntimeError, command::ip};

/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/var/run/netns";

/// The bridge, the CIDR and the addresses in use.
#[derive(Debug)]
pub(crate) struct Network {
    bridge: String,
    network: u32,
    prefix: u8,
    /// Prefix of every netns name of this runtime (derived from its root).
    tag: String,
    in_use: Mutex<BTreeSet<Ipv4Addr>>,
    bridge_ready: tokio::sync::Mutex<bool>,
}

/// One group's network.
#[derive(Debug, Clone)]
pub(crate) struct GroupNetwork {
    pub netns: String,
    pub veth: String,
    pub ip: Ipv4Addr,
}

impl GroupNetwork {
    /// The namespace's path for an OCI spec.
    pub(crate) fn netns_path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.netns)
    }
}

impl Network {
    pub(crate) fn new(bridge: &str, pod_cidr: &str, tag: &str) -> Result<Self, RuntimeError> {
        let invalid = |reason: String| RuntimeError::InvalidConfig { reason };
        if bridge.is_empty()
            || bridge.len() > 15
            || !bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(invalid(format!(
                "bridge name {bridge:?} must be 1 to 15 characters of [A-Za-z0-9._-]"
            )));
        }
        let (addr, prefix) = pod_cidr
            .split_once('/')
            .ok_or_else(|| invalid(format!("pod CIDR {pod_cidr:?} is not ADDRESS/PREFIX")))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| invalid(format!("pod CIDR {pod_cidr:?} has no IPv4 address")))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| invalid(format!("pod CIDR {pod_cidr:?} needs a prefix of 8 to 30")))?;
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            bridge: bridge.to_owned(),
            network: u32::from(addr) & mask,
            prefix,
            tag: tag.to_owned(),
            in_use: Mutex::new(BTreeSet::new()),
            bridge_ready: tokio::sync::Mutex::new(false),
        })
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    fn broadcast(&self) -> u32 {
        self.network | (u32::MAX >> self.prefix)
    }

    fn netns_name(&self, group_id: &str) -> String {
        format!("{}-{group_id}", self.tag)
    }

    fn veth_name(&self, group_id: &str) -> String {
        let digest = Sha256::digest(format!("{}/{group_id}", self.tag).as_bytes());
        // 15 characters, the kernel's limit for an interface name.
        format!("ev{}", &hex::encode(digest)[..13])
    }

    /// Creates the bridge with the gateway address, once.
    async fn ensure_bridge(&self) -> Result<(), RuntimeError> {
        let mut ready = self.bridge_ready.lock().await;
        if *ready {
            return Ok(());
        }
        if ip(&["link", "show", "dev", &self.bridge]).await.is_err() {
            ip(&["link", "add", "name", &self.bridge, "type", "bridge"]).await?;
        }
        let gateway = format!("{}/{}", self.gateway(), self.prefix);
        ip(&["addr", "replace", &gateway, "dev", &self.bridge]).await?;
        ip(&["link", "set", "dev", &self.bridge, "up"]).await?;
        *ready = true;
        Ok(())
    }

    fn allocate(&self) -> Result<Ipv4Addr, RuntimeError> {
        let mut in_use = self.in_use.lock();
        let found = (self.network + 2..self.broadcast())
            .map(Ipv4Addr::from)
            .find(|candidate| !in_use.contains(candidate))
            .ok_or_else(|| RuntimeError::AddressesExhausted {
                cidr: format!("{}/{}", Ipv4Addr::from(self.network), self.prefix),
            })?;
        in_use.insert(found);
        Ok(found)
    }

    /// Creates a group's namespace, veth pair, address, loopback and default route.
    pub(crate) async fn create(&self, group_id: &str) -> Result<GroupNetwork, RuntimeError> {
        self.ensure_bridge().await?;
        let network = GroupNetwork {
            netns: self.netns_name(group_id),
            veth: self.veth_name(group_id),
            ip: self.allocate()?,
        };
        if let Err(error) = self.configure(&network).await {
            self.destroy(&network).await;
            return Err(error);
        }
        Ok(network)
    }

    async fn configure(&self, network: &GroupNetwork) -> Result<(), RuntimeError> {
        let ns = network.netns.as_str();
        // A namespace of the same name can only be a leftover of this group: start afresh.
        let _ = ip(&["netns", "delete", ns]).await;
        ip(&["netns", "add", ns]).await?;
        let _ = ip(&["link", "delete", &network.veth]).await;
        ip(&[
            "link",
            "add",
            &network.veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        ])
        .await?;
        ip(&[
            "link",
            "set",
            "dev",
            &network.veth,
            "master",
            &self.bridge,
            "up",
        ])
        .await?;
        let address = format!("{}/{}", network.ip, self.prefix);
        ip(&["-n", ns, "addr", "add", &address, "dev", "eth0"]).await?;
        ip(&["-n", ns, "link", "set", "dev", "lo", "up"]).await?;
        ip(&["-n", ns, "link", "set", "dev", "eth0", "up"]).await?;
        let gateway = self.gateway().to_string();
        ip(&["-n", ns, "route", "add", "default", "via", &gateway]).await?;
        Ok(())
    }

    /// Removes a group's namespace (which takes its veth pair along) and frees its address.
    /// Best effort: what cannot be removed is logged.
    pub(crate) async fn destroy(&self, network: &GroupNetwork) {
        if let Err(error) = ip(&["netns", "delete", &network.netns]).await
            && PathBuf::from(NETNS_DIR).join(&network.netns).exists()
        {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                netns = %network.netns,
                "cannot remove a group's network namespace"
            );
        }
        // Normally gone with its peer; a veth whose namespace was never made stays otherwise.
        if std::path::Path::new("/sys/class/net")
            .join(&network.veth)
            .exists()
        {
            let _ = ip(&["link", "delete", &network.veth]).await;
        }
        self.in_use.lock().remove(&network.ip);
    }

    /// Removes every namespace of this runtime and every veth on its bridge.
    pub(crate) async fn remove_leftovers(&self) {
        let prefix = format!("{}-", self.tag);
        if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) {
                    tracing::info!(netns = %name, "removing a leftover network namespace");
                    let _ = ip(&["netns", "delete", &name]).await;
                }
            }
        }
        for veth in self.bridge_ports() {
            let _ = ip(&["link", "delete", &veth]).await;
        }
    }

    /// Interfaces enslaved to the bridge.
    fn bridge_ports(&self) -> Vec<String> {
        let dir = PathBuf::from("/sys/class/net")
            .join(&self.bridge)
            .join("brif");
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Deletes the bridge.
    pub(crate) async fn remove_bridge(&self) {
        let mut ready = self.bridge_ready.lock().await;
        if std::path::Path::new("/sys/class/net")
            .join(&self.bridge)
            .exists()
            && let Err(error) = ip(&["link", "delete", &self.bridge]).await
        {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                bridge = %self.bridge,
                "cannot remove the bridge"
            );
        }
        *ready = false;
    }

    /// Bytes received and sent by the group (the host end's counters, reversed).
    pub(crate) fn counters(network: &GroupNetwork) -> (u64, u64) {
        let read = |name: &str| -> u64 {
            std::fs::read_to_string(
                PathBuf::from("/sys/class/net")
                    .join(&network.veth)
                    .join("statistics")
                    .join(name),
            )
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
        };
        // What the host end transmits, the group receives.
        (read("tx_bytes"), read("rx_bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_gateway_and_broadcast() {
        let net = Network::new("br-x", "10.9.0.0/30", "t").unwrap();
        assert_eq!(net.gateway(), Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(net.allocate().unwrap(), Ipv4Addr::new(10, 9, 0, 2));
        assert!(net.allocate().is_err());
        net.in_use.lock().remove(&Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(net.allocate().unwrap(), Ipv4Addr::new(10, 9, 0, 2));
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(Network::new("a-bridge-name-too-long", "10.0.0.0/24", "t").is_err());
        assert!(Network::new("br", "10.0.0.0", "t").is_err());
        assert!(Network::new("br", "10.0.0.0/31", "t").is_err());
        assert_eq!(
            Network::new("br", "10.0.0.0/24", "t")
                .unwrap()
                .veth_name("g")
                .len(),
            15
        );
    }
}
