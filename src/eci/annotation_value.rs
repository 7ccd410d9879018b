//! Reading the values of ECI's `k8s.aliyun.com/…` annotations, on pods and ImageCaches alike:
//! lists, booleans, bounded numbers, ids, registries, bandwidths and ACR Enterprise instances;
//! each refusal ([`Invalid`]) names the annotation and its value.

use super::{annotation as key, container_group::AcrRegistryInfo};

/// A malformed annotation: the pod (or ImageCache) fails with it; the node carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}={value:?}: {why}")]
pub struct Invalid {
    /// The annotation.
    pub key: &'static str,
    /// Its value as written (annotations are not secret).
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

/// A comma-separated list, items trimmed, empty ones dropped.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How much of a value, and of what is wrong with it, an error repeats: an annotation may be
/// as large as the API server allows (256 KiB), and the error becomes the pod's status message
/// and an event, which must stay readable and small.
const SHOWN_CHARS: usize = 200;

pub fn invalid(key: &'static str, value: &str, why: impl Into<String>) -> Invalid {
    let why: String = why.into();
    Invalid {
        key,
        value: value.chars().take(SHOWN_CHARS).collect(),
        why: if why.chars().count() > SHOWN_CHARS {
            let mut cut: String = why.chars().take(SHOWN_CHARS).collect();
            cut.push('…');
            cut
        } else {
            why
        },
    }
}

pub fn boolean(key: &'static str, value: &str) -> Result<bool, Invalid> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "must be \"true\" or \"false\"")),
    }
}

pub fn integer(
    key: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, Invalid> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            invalid(
                key,
                value,
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

pub fn small(
    key: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u32, Invalid> {
    let n = integer(key, value, range)?;
    u32::try_from(n).map_err(|_| invalid(key, value, "too large"))
}

pub fn one_of(key: &'static str, value: &str, allowed: &[&str]) -> Result<String, Invalid> {
    allowed
        .iter()
        .find(|a| **a == value)
        .map(|a| (*a).to_owned())
        .ok_or_else(|| invalid(key, value, format!("must be one of {}", allowed.join(", "))))
}

/// Ids of one kind (`vsw-`, `sg-`): a list of at most `max`, each with `prefix`.
pub fn ids(
    key: &'static str,
    value: &str,
    prefix: &str,
    max: usize,
) -> Result<Vec<String>, Invalid> {
    let items = list(value);
    if items.len() > max {
        return Err(invalid(key, value, format!("at most {max} ids")));
    }
    // Alibaba Cloud's resource ids are the prefix and lowercase letters and digits
    // (`vsw-bp1…`, `sg-…`, `eip-…`): anything else would be sent to the cloud only to come back
    // as a `*.NotFound` after the create, or, from an emulator that trusts it, not at all.
    let well_formed = |id: &str| {
        id.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 64
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    };
    if let Some(bad) = items.iter().find(|i| !well_formed(i)) {
        let shown: String = bad.chars().take(80).collect();
        return Err(invalid(
            key,
            value,
            format!("{shown:?} is not an id: {prefix:?} and lowercase letters and digits"),
        ));
    }
    Ok(items)
}

/// Registries as `host[:port]`, comma-separated.
pub fn registries(key: &'static str, value: &str) -> Result<String, Invalid> {
    let items = list(value);
    if let Some(bad) = items
        .iter()
        .find(|h| h.contains("://") || h.contains('/') || h.contains(' '))
    {
        return Err(invalid(key, value, format!("{bad:?} is not a host[:port]")));
    }
    Ok(items.join(","))
}

/// A bandwidth in bytes per second (`40M`: units B, K, KB, M, MB, G, GB, T, TB, powers of
/// 1000, none meaning bytes) as bit/s. ECI's "Limit the bandwidth of an instance" page gives
/// the annotation in bytes per second and the API parameter in bit/s.
pub fn bandwidth_bits(key: &'static str, value: &str) -> Result<u64, Invalid> {
    let digits = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let factor: f64 = match unit {
        "" | "B" => 1.0,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        _ => {
            return Err(invalid(
                key,
                value,
                "the unit must be B, K, KB, M, MB, G, GB, T or TB",
            ));
        }
    };
    let bytes: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| *n > 0.0 && n.is_finite())
        .ok_or_else(|| {
            invalid(
                key,
                value,
                "must be a positive number with a unit, e.g. 40M",
            )
        })?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((bytes * factor * 8.0).round() as u64)
}

/// `k8s.aliyun.com/acr-instance-ids` (`cri-…` or `<region>:cri-…`, comma-separated) with the
/// roles of `acr-service-arns` and `acr-user-arns`: the ACR Enterprise instances pulled from
/// without a password (ECI's "Pull images from an ACR Enterprise instance without a secret").
///
/// # Errors
/// [`Invalid`] naming the annotation at fault.
pub fn acr_registries(
    instance_ids: Option<&str>,
    service: Option<&str>,
    user: Option<&str>,
) -> Result<Vec<AcrRegistryInfo>, Invalid> {
    for (k, arn) in [(key::ACR_SERVICE_ARNS, service), (key::ACR_USER_ARNS, user)] {
        if let Some(arn) = arn.filter(|a| !a.starts_with("acs:ram::")) {
            return Err(invalid(
                k,
                arn,
                "must be a RAM role ARN, acs:ram::<account>:role/<name>",
            ));
        }
    }
    let Some(v) = instance_ids else {
        return Ok(Vec::new());
    };
    list(v)
        .into_iter()
        .map(|item| {
            let (region, id) = match item.split_once(':') {
                Some((region, id)) => (Some(region.to_owned()), id.to_owned()),
                None => (None, item.clone()),
            };
            if !id.starts_with("cri-") || region.as_deref().is_some_and(str::is_empty) {
                return Err(invalid(
                    key::ACR_INSTANCE_IDS,
                    v,
                    format!("{item:?} is not cri-… or <region>:cri-…"),
                ));
            }
            Ok(AcrRegistryInfo {
                instance_id: id,
                region_id: region,
                arn_service: service.map(str::to_owned),
                arn_user: user.map(str::to_owned),
                ..AcrRegistryInfo::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_repeats_at_most_a_few_hundred_characters_of_a_huge_value() {
        let huge = "x".repeat(200 * 1024);
        let error = invalid("k", &huge, format!("{huge:?} is not a spec"));
        assert!(
            error.to_string().len() < 1024,
            "{} bytes",
            error.to_string().len()
        );
    }
}
