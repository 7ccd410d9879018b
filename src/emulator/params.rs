//! Reading the flattened request parameters (`Container.1.Name`, `Image.2`, `Tag.1.Key`).
//!
//! The SDKs flatten lists 1-based (`Prefix.N`) and objects by field (`Prefix.Field`); a few
//! parameters are JSON arrays in a string (`ContainerGroupIds`, ExecContainerCommand `Command`).
//! Every getter returns an [`ApiError`] naming the full parameter on bad input.

use std::collections::BTreeMap;

use super::error::ApiError;

/// Highest list index accepted (`Prefix.N`); far above every documented limit, it only bounds
/// the work a hostile request can cause.
pub const MAX_INDEX: usize = 1000;

/// Request parameters, or a view of the fields under one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Full name of the prefix of this view (`Container.1`), empty at the top.
    prefix: String,
    map: BTreeMap<String, String>,
}

impl Params {
    /// Top-level parameters.
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Self {
            prefix: String::new(),
            map,
        }
    }

    /// Every parameter of this view.
    pub fn map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    fn full(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// The value of `key`, with an empty value treated as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of `key` or `Missing…`.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key)
            .ok_or_else(|| ApiError::missing(&self.full(key)))
    }

    /// `true`/`false` (any case).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::invalid(&self.full(key), "expected true or false")),
            })
            .transpose()
    }

    /// An integer.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid(&self.full(key), "expected an integer"))
            })
            .transpose()
    }

    /// A finite, non-negative number.
    pub fn float(&self, key: &str) -> Result<Option<f64>, ApiError> {
        self.get(key)
            .map(|v| match v.trim().parse::<f64>() {
                Ok(f) if f.is_finite() && f >= 0.0 => Ok(f),
                _ => Err(ApiError::invalid(
                    &self.full(key),
                    "expected a non-negative number",
                )),
            })
            .transpose()
    }

    /// A string that must be one of `allowed`.
    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
            Some(_) => Err(ApiError::invalid(
                &self.full(key),
                format!("expected one of {}", allowed.join(", ")),
            )),
        }
    }

    /// The indices N present under `prefix.N` (as `prefix.N` or `prefix.N.…`), ascending.
    pub fn indices(&self, prefix: &str) -> Result<Vec<usize>, ApiError> {
        let dotted = format!("{prefix}.");
        let mut out = Vec::new();
        for key in self.map.range(dotted.clone()..).map(|(k, _)| k) {
            let Some(rest) = key.strip_prefix(&dotted) else {
                break;
            };
            let digits = rest.split('.').next().unwrap_or_default();
            let Ok(n) = digits.parse::<usize>() else {
                continue; // `Prefix.Field`, not a list element
            };
            if n == 0 || n > MAX_INDEX {
                return Err(ApiError::invalid(
                    &self.full(&format!("{prefix}.{digits}")),
                    format!("list indices run from 1 to {MAX_INDEX}"),
                ));
            }
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// A list of scalars `prefix.1`, `prefix.2`, …, in index order. An empty element is kept:
    /// a list is positional (`Arg.2=` is the empty argument of `sh -c ""`), and dropping it
    /// would run another command than the one asked for.
    pub fn strings(&self, prefix: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .indices(prefix)?
            .into_iter()
            .filter_map(|n| self.map.get(&format!("{prefix}.{n}")).cloned())
            .collect())
    }

    /// A list of objects `prefix.N.Field`, each as a view, in index order.
    pub fn objects(&self, prefix: &str) -> Result<Vec<Params>, ApiError> {
        Ok(self
            .indices(prefix)?
            .into_iter()
            .map(|n| self.sub(&format!("{prefix}.{n}")))
            .collect())
    }

    /// The fields under `prefix.` as a view.
    pub fn sub(&self, prefix: &str) -> Params {
        let dotted = format!("{prefix}.");
        let map = self
            .map
            .range(dotted.clone()..)
            .take_while(|(k, _)| k.starts_with(&dotted))
            .map(|(k, v)| (k[dotted.len()..].to_owned(), v.clone()))
            .collect();
        Params {
            prefix: self.full(prefix),
            map,
        }
    }

    /// Whether any parameter lies under `prefix.` (or is `prefix` itself).
    pub fn has(&self, prefix: &str) -> bool {
        self.get(prefix).is_some() || !self.sub(prefix).map.is_empty()
    }

    /// A JSON array of strings in one parameter (`["eci-a","eci-b"]`).
    pub fn json_strings(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        self.get(key)
            .map(|v| {
                serde_json::from_str::<Vec<String>>(v).map_err(|_| {
                    ApiError::invalid(&self.full(key), "expected a JSON array of strings")
                })
            })
            .transpose()
    }
}

/// Parameters from `(name, value)` pairs, for tests.
#[cfg(test)]
pub fn params(pairs: &[(&str, &str)]) -> Params {
    Params::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_one_based_and_ordered_numerically() {
        let p = params(&[
            ("Image.10", "j"),
            ("Image.2", "b"),
            ("Image.1", "a"),
            ("ImageCacheName", "x"),
        ]);
        assert_eq!(p.strings("Image").expect("list"), ["a", "b", "j"]);
        assert!(p.strings("Missing").expect("empty").is_empty());
        let zero = params(&[("Image.0", "a")]);
        assert_eq!(
            zero.strings("Image").expect_err("zero").code,
            "InvalidParameter.Image"
        );
    }

    #[test]
    fn nested_objects_and_their_errors_name_the_full_parameter() {
        let p = params(&[
            ("Container.1.Name", "web"),
            ("Container.1.Port.1.Port", "80"),
            ("Container.1.EnvironmentVar.2.Key", "B"),
            ("Container.1.EnvironmentVar.1.Key", "A"),
            ("Container.2.Name", "side"),
            ("Container.1.Cpu", "lots"),
        ]);
        let containers = p.objects("Container").expect("objects");
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0].get("Name"), Some("web"));
        let envs = containers[0].objects("EnvironmentVar").expect("env");
        assert_eq!(envs[0].get("Key"), Some("A"));
        assert_eq!(envs[1].get("Key"), Some("B"));
        assert_eq!(
            containers[0].objects("Port").expect("ports")[0]
                .int("Port")
                .expect("int"),
            Some(80)
        );
        let error = containers[1].required("Image").expect_err("missing image");
        assert_eq!(error.code, "MissingParameter");
        assert!(
            error.message.contains("Container.2.Image"),
            "{}",
            error.message
        );
        let error = containers[0].float("Cpu").expect_err("bad cpu");
        assert_eq!(error.code, "InvalidParameter.Container");
        assert!(error.message.contains("Container.1.Cpu"));
    }

    #[test]
    fn scalars_parse_strictly() {
        let p = params(&[
            ("A", "TRUE"),
            ("B", "yes"),
            ("N", "20"),
            ("E", ""),
            ("J", "[\"x\",\"y\"]"),
        ]);
        assert_eq!(p.bool("A").expect("bool"), Some(true));
        assert!(p.bool("B").is_err());
        assert_eq!(p.int("N").expect("int"), Some(20));
        assert_eq!(p.get("E"), None, "empty values count as absent");
        assert_eq!(
            p.required("RegionId").expect_err("missing").code,
            "MissingRegionId"
        );
        assert_eq!(
            p.json_strings("J").expect("json"),
            Some(vec!["x".into(), "y".into()])
        );
        assert!(p.json_strings("N").is_err());
        assert!(p.one_of("B", &["Always", "Never"]).is_err());
    }
}
