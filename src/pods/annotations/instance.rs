//! The instance a pod asks for: `eci-use-specs`, `eci-instance-family`/`-generation`, and
//! spot (`eci-spot-*`).

use k8s_openapi::api::core::v1::Pod;

use super::{
    Applied, Defaults, IGNORED_FEATURES_REASON, Invalid, MAX_SPECS, UNSUPPORTED_REASON,
    values::{boolean, get, invalid, list, one_of, small},
};
use crate::eci::{self, CreateContainerGroup, annotation as key};

/// One entry of `eci-use-specs`.
#[derive(Debug, Clone, PartialEq)]
enum Spec {
    /// `<vCPU>-<GiB>Gi`.
    Size(f64, f64, String),
    /// An ECS type.
    Ecs(String),
}

impl Spec {
    /// The entry as the pod wrote it.
    fn into_text(self) -> String {
        match self {
            Spec::Size(.., text) | Spec::Ecs(text) => text,
        }
    }
}

fn specs(value: &str) -> Result<Vec<Spec>, Invalid> {
    let items = list(value);
    if items.len() > MAX_SPECS {
        return Err(invalid(
            key::USE_SPECS,
            value,
            format!("at most {MAX_SPECS} specs"),
        ));
    }
    items
        .into_iter()
        .map(|item| {
            if let Some(rest) = item.strip_prefix("ecs.") {
                let shape = rest.split('.').count() == 2
                    && rest.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'
                    });
                return if shape {
                    Ok(Spec::Ecs(item))
                } else {
                    Err(invalid(
                        key::USE_SPECS,
                        value,
                        format!("{item:?} is not an ECS instance type"),
                    ))
                };
            }
            let size = item
                .strip_suffix("Gi")
                .and_then(|s| s.split_once('-'))
                .and_then(|(c, m)| Some((c.parse::<f64>().ok()?, m.parse::<f64>().ok()?)))
                .filter(|(c, m)| *c > 0.0 && *m > 0.0);
            match size {
                Some((cpu, memory)) => Ok(Spec::Size(cpu, memory, item)),
                None => Err(invalid(
                    key::USE_SPECS,
                    value,
                    format!(
                        "{item:?} is neither <vCPU>-<GiB>Gi (e.g. 2-4Gi) nor an ECS instance type"
                    ),
                )),
            }
        })
        .collect()
}

/// Wanted and excluded items of `eci-instance-family`/`-generation` (a leading `-` excludes).
fn wanted_and_excluded(value: &str) -> (Vec<String>, Vec<String>) {
    let (excluded, wanted): (Vec<String>, Vec<String>) =
        list(value).into_iter().partition(|i| i.starts_with('-'));
    let excluded = excluded
        .into_iter()
        .map(|i| i.trim_start_matches('-').trim().to_owned())
        .collect();
    (wanted, excluded)
}

/// The generations the node expands a vCPU/memory spec into when a pod names no family: ECI's
/// current ones, newest first.
const DEFAULT_GENERATIONS: &[&str] = &["7", "6", "5"];

/// The ECS families `eci-instance-family`/`-generation` allow, in the order tried.
fn families(pod: &Pod) -> Result<Option<Vec<String>>, Invalid> {
    let family = get(pod, key::INSTANCE_FAMILY);
    let generation = get(pod, key::INSTANCE_GENERATION);
    if family.is_none() && generation.is_none() {
        return Ok(None);
    }
    let (want_families, not_families) = family.map(wanted_and_excluded).unwrap_or_default();
    let (want_gens, not_gens) = generation.map(wanted_and_excluded).unwrap_or_default();
    if let (Some(value), Some(bad)) = (
        family,
        want_families
            .iter()
            .chain(&not_families)
            .find(|f| !eci::instance_spec::is_family(f)),
    ) {
        return Err(invalid(
            key::INSTANCE_FAMILY,
            value,
            format!("{bad:?} is not an ECS family this node can size (ecs.c6, ecs.g7, ecs.r6e, …)"),
        ));
    }
    if let (Some(value), Some(bad)) = (
        generation,
        want_gens
            .iter()
            .chain(&not_gens)
            .find(|g| !matches!(g.parse::<u32>(), Ok(5..=9))),
    ) {
        return Err(invalid(
            key::INSTANCE_GENERATION,
            value,
            format!("{bad:?} is not an ECS generation ECI runs (5 to 9)"),
        ));
    }
    let generation_of = |family: &str| -> String {
        family
            .trim_start_matches("ecs.")
            .chars()
            .skip(1)
            .take_while(char::is_ascii_digit)
            .collect()
    };
    let candidates: Vec<String> = if want_families.is_empty() {
        let gens: Vec<&str> = if want_gens.is_empty() {
            DEFAULT_GENERATIONS.to_vec()
        } else {
            want_gens.iter().map(String::as_str).collect()
        };
        gens.iter()
            .flat_map(|g| ["c", "g", "r"].map(|kind| format!("ecs.{kind}{g}")))
            .collect()
    } else {
        want_families
            .into_iter()
            .filter(|f| want_gens.is_empty() || want_gens.contains(&generation_of(f)))
            .collect()
    };
    Ok(Some(
        candidates
            .into_iter()
            .filter(|f| !not_families.contains(f) && !not_gens.contains(&generation_of(f)))
            .collect(),
    ))
}

/// `eci-use-specs`, `eci-instance-family`/`-generation` → `InstanceType` (the group's own
/// vCPU/memory give way to it, as ECI documents for multiple specs).
pub(super) fn instance(
    pod: &Pod,
    request: &mut CreateContainerGroup,
    applied: &mut Applied,
) -> Result<(), Invalid> {
    let specs = get(pod, key::USE_SPECS)
        .map(specs)
        .transpose()?
        .unwrap_or_default();
    let families = families(pod)?;
    let Some(families) = families else {
        if !specs.is_empty() {
            set_types(request, specs.into_iter().map(Spec::into_text).collect());
        }
        return Ok(());
    };
    if !specs.is_empty() && specs.iter().all(|s| matches!(s, Spec::Ecs(_))) {
        applied.warnings.push((
            IGNORED_FEATURES_REASON,
            format!(
                "{} and {} apply to vCPU/memory specs; every spec of {} is an ECS type, so they are ignored",
                key::INSTANCE_FAMILY,
                key::INSTANCE_GENERATION,
                key::USE_SPECS
            ),
        ));
        set_types(request, specs.into_iter().map(Spec::into_text).collect());
        return Ok(());
    }
    let sizes: Vec<Spec> = if specs.is_empty() {
        let (cpu, memory) = match (request.cpu, request.memory) {
            (Some(c), Some(m)) => (c, m),
            _ => eci::DEFAULT_SPEC,
        };
        vec![Spec::Size(cpu, memory, String::new())]
    } else {
        specs
    };
    let mut types: Vec<String> = Vec::new();
    for spec in sizes {
        match spec {
            Spec::Ecs(name) => types.push(name),
            Spec::Size(cpu, memory, _) => {
                let mut sized: Vec<(f64, String)> = families
                    .iter()
                    .filter_map(|f| {
                        let name = eci::instance_spec::smallest_of_family(f, cpu, memory)?;
                        let size = eci::instance_spec::ecs_type(&name)?;
                        Some((size.cpu * 1000.0 + size.memory, name))
                    })
                    .collect();
                // The closest fit first, as ECI's scheduler prefers the cheapest that holds it.
                sized.sort_by(|a, b| a.0.total_cmp(&b.0));
                types.extend(sized.into_iter().map(|(_, n)| n));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    types.retain(|t| seen.insert(t.clone()));
    if types.is_empty() {
        let value = get(pod, key::INSTANCE_FAMILY)
            .or_else(|| get(pod, key::INSTANCE_GENERATION))
            .unwrap_or_default();
        let which = if get(pod, key::INSTANCE_FAMILY).is_some() {
            key::INSTANCE_FAMILY
        } else {
            key::INSTANCE_GENERATION
        };
        return Err(invalid(which, value, "allows no ECS family"));
    }
    types.truncate(MAX_SPECS);
    set_types(request, types);
    Ok(())
}

/// The group gets one of `types`, tried in order: its own vCPU/memory give way to them.
fn set_types(request: &mut CreateContainerGroup, types: Vec<String>) {
    request.instance_type = Some(types.join(","));
    request.cpu = None;
    request.memory = None;
}

/// `eci-spot-*` → `SpotStrategy`, `SpotPriceLimit`, `SpotDuration`, `StrictSpot`.
pub(super) fn spot(
    pod: &Pod,
    defaults: &Defaults,
    request: &mut CreateContainerGroup,
    applied: &mut Applied,
) -> Result<(), Invalid> {
    let strategy = get(pod, key::SPOT_STRATEGY)
        .map(|v| {
            one_of(
                key::SPOT_STRATEGY,
                v,
                &["SpotAsPriceGo", "SpotWithPriceLimit", "NoSpot"],
            )
        })
        .transpose()?;
    let price = get(pod, key::SPOT_PRICE_LIMIT)
        .map(|v| {
            let decimals = v.split_once('.').map_or(0, |(_, d)| d.len());
            v.parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && p.is_finite() && decimals <= 3 && !v.starts_with('+'))
                .ok_or_else(|| {
                    invalid(
                        key::SPOT_PRICE_LIMIT,
                        v,
                        "must be a positive price with at most 3 decimals, e.g. 0.5",
                    )
                })
        })
        .transpose()?;
    let spot = matches!(
        strategy.as_deref(),
        Some("SpotAsPriceGo" | "SpotWithPriceLimit")
    );
    match (strategy.as_deref(), price) {
        (Some("SpotWithPriceLimit"), None) => {
            return Err(invalid(
                key::SPOT_STRATEGY,
                "SpotWithPriceLimit",
                format!("needs {} (the hourly price limit)", key::SPOT_PRICE_LIMIT),
            ));
        }
        (Some("SpotWithPriceLimit"), Some(limit)) => request.spot_price_limit = Some(limit),
        (_, Some(_)) => applied.warnings.push((
            UNSUPPORTED_REASON,
            format!(
                "{} is used only with {}: SpotWithPriceLimit; it was ignored",
                key::SPOT_PRICE_LIMIT,
                key::SPOT_STRATEGY
            ),
        )),
        _ => {}
    }
    request.spot_strategy = strategy;
    let duration = get(pod, key::SPOT_DURATION)
        .map(|v| small(key::SPOT_DURATION, v, 0..=1))
        .transpose()?;
    let fallback = get(pod, key::SPOT_FALLBACK)
        .map(|v| boolean(key::SPOT_FALLBACK, v))
        .transpose()?;
    if spot {
        request.spot_duration = duration;
        // ECI documents no mapping of eci-spot-fallback; StrictSpot is the API's switch between
        // "spot or nothing" and "spot, else pay-as-you-go" (inferred).
        request.strict_spot = Some(!fallback.unwrap_or(defaults.spot_fallback));
    } else {
        for (k, given) in [
            (key::SPOT_DURATION, duration.is_some()),
            (key::SPOT_FALLBACK, fallback.is_some()),
        ] {
            if given {
                applied.warnings.push((
                    UNSUPPORTED_REASON,
                    format!(
                        "{k} is used only with a spot {}; it was ignored",
                        key::SPOT_STRATEGY
                    ),
                ));
            }
        }
    }
    Ok(())
}
