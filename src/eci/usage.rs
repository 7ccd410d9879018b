//! `ListUsage`: the account's quotas and how much of them is used (vCPUs, image caches).
//!
//! The service answers an open `Attributes` map that grows over time, so it is kept as a map
//! with typed accessors for the keys the node reads; values may be numbers or numeric strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Action, Client, Error};

/// `ListUsage`. Answers [`ListUsageResponse`]. Takes only `RegionId`, which the client adds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListUsage {}

impl Action for ListUsage {
    const NAME: &'static str = "ListUsage";
    type Response = ListUsageResponse;
}

/// Quotas and usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListUsageResponse {
    /// Request id.
    pub request_id: String,
    /// Every attribute as answered, e.g. `MaxImageCacheCount`.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl ListUsageResponse {
    /// An attribute as a number, whether it was answered as a number or a numeric string.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.attributes.get(name)? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// vCPUs in use.
    pub fn used_cpu(&self) -> Option<f64> {
        self.number("UsedCpu")
    }

    /// vCPU quota.
    pub fn max_cpu(&self) -> Option<f64> {
        self.number("MaxCpu")
    }

    /// Manually created image caches.
    pub fn used_image_cache_count(&self) -> Option<f64> {
        self.number("UsedImageCacheCount")
    }

    /// Quota of manually created image caches.
    pub fn max_image_cache_count(&self) -> Option<f64> {
        self.number("MaxImageCacheCount")
    }

    /// Automatically created image caches.
    pub fn used_auto_image_cache_count(&self) -> Option<f64> {
        self.number("UsedAutoImageCacheCount")
    }

    /// Quota of automatically created image caches.
    pub fn max_auto_image_cache_count(&self) -> Option<f64> {
        self.number("MaxAutoImageCacheCount")
    }
}

// === impl Client ===

impl Client {
    /// `ListUsage`.
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn list_usage(&self) -> Result<ListUsageResponse, Error> {
        self.send(&ListUsage {}).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eci::params::{decode, to_params};

    #[test]
    fn request_has_no_parameters_of_its_own() {
        assert!(to_params(&ListUsage {}).expect("flattens").is_empty());
    }

    #[test]
    fn response_reads_numbers_and_numeric_strings() {
        let r: ListUsageResponse = decode(
            br#"{"RequestId":"R","Attributes":{"UsedCpu":11,"MaxCpu":"1000","MaxImageCacheCount":50,
                 "UsedImageCacheCount":0,"Weird":true}}"#,
        )
        .expect("decodes");
        assert_eq!(r.used_cpu(), Some(11.0));
        assert_eq!(r.max_cpu(), Some(1000.0));
        assert_eq!(r.max_image_cache_count(), Some(50.0));
        assert_eq!(r.used_image_cache_count(), Some(0.0));
        assert_eq!(r.max_auto_image_cache_count(), None);
        assert_eq!(r.number("Weird"), None);
    }
}
