//! Resource tags, shared by container groups and image caches (`Tag.N.Key` / `Tag.N.Value` in
//! requests, `Tags[{Key, Value}]` in responses). The node finds what it owns by its tags.

use serde::{Deserialize, Serialize};

/// One tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tag {
    /// Key: 1–64 chars, not starting with `acs:` or `aliyun`.
    pub key: String,
    /// Value: up to 128 chars, may be empty.
    pub value: String,
}

impl Tag {
    /// A tag from key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}
