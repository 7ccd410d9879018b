//! ECI's instance specifications (vCPU → GiB of memory) and the rounding ECI applies to a
//! request that is not one of them. A fact of the ECI API: the node rounds a pod's resources
//! with it before asking, and the emulator rounds a `CreateContainerGroup` with it as the cloud
//! would, so both always agree on the instance a pod gets.
//!
//! Source: "Specify the number of vCPUs and memory size to create an elastic container
//! instance", the table of specifications available in every region
//! (<https://www.alibabacloud.com/help/doc-detail/114662.html>; reference §2.1.1). The specs
//! offered only in some regions are left out, so a request rounds to one that exists
//! everywhere.

/// Specs available in every region: vCPU → the memory sizes (GiB) offered with it.
pub const SPECS: &[(f64, &[f64])] = &[
    (0.25, &[0.5, 1.0]),
    (0.5, &[1.0, 2.0]),
    (1.0, &[2.0, 4.0, 8.0]),
    (2.0, &[1.0, 2.0, 4.0, 8.0, 16.0]),
    (4.0, &[2.0, 4.0, 8.0, 16.0, 32.0]),
    (8.0, &[4.0, 8.0, 16.0, 32.0, 64.0]),
    (12.0, &[12.0, 24.0, 48.0, 96.0]),
    (16.0, &[16.0, 32.0, 64.0, 128.0]),
    (24.0, &[24.0, 48.0, 96.0, 192.0]),
    (32.0, &[32.0, 64.0, 128.0, 256.0]),
    (52.0, &[96.0, 192.0, 384.0]),
    (64.0, &[128.0, 256.0, 512.0]),
];

/// The spec of an instance that asks for none: 2 vCPU, 4 GiB.
pub const DEFAULT_SPEC: (f64, f64) = (2.0, 4.0);

/// The temporary storage every instance has free, GiB; `EphemeralStorage` adds to it ("Scale
/// up the temporary storage space",
/// https://help.aliyun.com/en/eci/user-guide/increase-the-capacity-of-the-temporary-storage-space).
pub const DEFAULT_TEMPORARY_STORAGE_GIB: u64 = 30;

/// The smallest spec with at least `cpu` vCPUs and `memory` GiB (fewest vCPUs first, then
/// least memory), or `None` when no spec is that big.
pub fn round_up_spec(cpu: f64, memory: f64) -> Option<(f64, f64)> {
    SPECS
        .iter()
        .filter(|(c, _)| *c >= cpu)
        .find_map(|(c, mems)| mems.iter().find(|m| **m >= memory).map(|m| (*c, *m)))
}

/// A `<vCPU>-<GiB>Gi` spec of `eci-use-specs` and `InstanceType` (`2-4Gi`, `0.5-1Gi`) as
/// vCPU and GiB, when it is one of [`SPECS`].
pub fn parse_spec(text: &str) -> Option<(f64, f64)> {
    let (cpu, memory) = text.trim().strip_suffix("Gi")?.split_once('-')?;
    let (cpu, memory): (f64, f64) = (cpu.parse().ok()?, memory.parse().ok()?);
    SPECS
        .iter()
        .any(|(c, mems)| *c == cpu && mems.contains(&memory))
        .then_some((cpu, memory))
}

/// An ECS instance type ECI can run a group on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EcsType {
    /// vCPUs.
    pub cpu: f64,
    /// GiB of memory.
    pub memory: f64,
    /// GPUs (0 for the general-purpose families).
    pub gpus: u32,
}

/// The GPU-accelerated ECS types ECI offers that this node knows: name, vCPU, GiB, GPUs.
///
/// Source: ECS "GPU-accelerated compute-optimized instance families" (gn6i: NVIDIA T4,
/// gn6v: V100, gn7i: A10), the types ECI lists in "ECS instance types supported by ECI"
/// (<https://www.alibabacloud.com/help/en/eci/user-guide/specify-ecs-instance-types-to-create-an-elastic-container-instance>).
pub const GPU_TYPES: &[(&str, f64, f64, u32)] = &[
    ("ecs.gn6i-c4g1.xlarge", 4.0, 15.0, 1),
    ("ecs.gn6i-c8g1.2xlarge", 8.0, 31.0, 1),
    ("ecs.gn6i-c16g1.4xlarge", 16.0, 62.0, 1),
    ("ecs.gn6i-c24g1.6xlarge", 24.0, 93.0, 1),
    ("ecs.gn6v-c8g1.2xlarge", 8.0, 32.0, 1),
    ("ecs.gn6v-c8g1.8xlarge", 32.0, 128.0, 4),
    ("ecs.gn7i-c8g1.2xlarge", 8.0, 30.0, 1),
    ("ecs.gn7i-c16g1.4xlarge", 16.0, 60.0, 1),
];

/// Sizes of the general-purpose families and their vCPUs (ECS's naming: `large` is 2 vCPU,
/// `xlarge` 4, `Nxlarge` 4·N).
const SIZES: &[(&str, f64)] = &[
    ("large", 2.0),
    ("xlarge", 4.0),
    ("2xlarge", 8.0),
    ("3xlarge", 12.0),
    ("4xlarge", 16.0),
    ("6xlarge", 24.0),
    ("8xlarge", 32.0),
    ("13xlarge", 52.0),
    ("16xlarge", 64.0),
];

/// GiB per vCPU of a general-purpose family: compute `c` 2, general `g` 4, memory `r` 8
/// (ECS's "Instance families" overview).
fn memory_ratio(family: &str) -> Option<f64> {
    let rest = family.strip_prefix("ecs.")?;
    let (kind, generation) = rest.split_at_checked(1)?;
    // Generation 5 and newer (ECI runs no older ones), with ECS's suffixes (`6e`, `7a`, `8i`).
    let digits: String = generation
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let suffix = &generation[digits.len()..];
    let generation: u32 = digits.parse().ok()?;
    if !(5..=9).contains(&generation) || !suffix.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    match kind {
        "c" => Some(2.0),
        "g" => Some(4.0),
        "r" => Some(8.0),
        _ => None,
    }
}

/// The size of an ECS type `name` (`ecs.c6.large`, `ecs.gn6i-c4g1.xlarge`), when it is one
/// ECI offers and this node knows.
pub fn ecs_type(name: &str) -> Option<EcsType> {
    if let Some((_, cpu, memory, gpus)) = GPU_TYPES.iter().find(|(n, ..)| *n == name) {
        return Some(EcsType {
            cpu: *cpu,
            memory: *memory,
            gpus: *gpus,
        });
    }
    let (family, size) = name.rsplit_once('.')?;
    let ratio = memory_ratio(family)?;
    let cpu = SIZES.iter().find(|(s, _)| *s == size)?.1;
    Some(EcsType {
        cpu,
        memory: cpu * ratio,
        gpus: 0,
    })
}

/// The smallest type of a general-purpose `family` (`ecs.c6`) with at least `cpu` vCPUs and
/// `memory` GiB, e.g. `ecs.g6.large` for 2 vCPU / 4 GiB.
pub fn smallest_of_family(family: &str, cpu: f64, memory: f64) -> Option<String> {
    let ratio = memory_ratio(family)?;
    SIZES
        .iter()
        .find(|(_, c)| *c >= cpu && c * ratio >= memory)
        .map(|(size, _)| format!("{family}.{size}"))
}

/// Whether `family` (`ecs.c6`) is a general-purpose family [`smallest_of_family`] can size.
pub fn is_family(family: &str) -> bool {
    memory_ratio(family).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_memory_specs_parse_only_when_eci_offers_them() {
        assert_eq!(parse_spec("2-4Gi"), Some((2.0, 4.0)));
        assert_eq!(parse_spec("0.5-1Gi"), Some((0.5, 1.0)));
        assert_eq!(parse_spec("2-3Gi"), None, "no 2 vCPU / 3 GiB spec");
        assert_eq!(parse_spec("2-4G"), None);
        assert_eq!(parse_spec("ecs.c6.large"), None);
    }

    #[test]
    fn ecs_types_have_their_family_size() {
        let c6 = ecs_type("ecs.c6.large").expect("c6.large");
        assert_eq!((c6.cpu, c6.memory, c6.gpus), (2.0, 4.0, 0));
        let g7 = ecs_type("ecs.g7.2xlarge").expect("g7.2xlarge");
        assert_eq!((g7.cpu, g7.memory), (8.0, 32.0));
        let r6e = ecs_type("ecs.r6e.xlarge").expect("r6e.xlarge");
        assert_eq!((r6e.cpu, r6e.memory), (4.0, 32.0));
        let t4 = ecs_type("ecs.gn6i-c4g1.xlarge").expect("gn6i");
        assert_eq!((t4.cpu, t4.memory, t4.gpus), (4.0, 15.0, 1));
        assert_eq!(ecs_type("ecs.c4.large"), None, "older than ECI runs");
        assert_eq!(ecs_type("ecs.c6.huge"), None);
        assert_eq!(ecs_type("c6.large"), None);
    }

    #[test]
    fn a_family_is_sized_to_the_request() {
        assert_eq!(
            smallest_of_family("ecs.c6", 2.0, 4.0).as_deref(),
            Some("ecs.c6.large")
        );
        assert_eq!(
            smallest_of_family("ecs.c6", 2.0, 8.0).as_deref(),
            Some("ecs.c6.xlarge")
        );
        assert_eq!(
            smallest_of_family("ecs.r7", 1.0, 1.0).as_deref(),
            Some("ecs.r7.large")
        );
        assert_eq!(smallest_of_family("ecs.x9", 1.0, 1.0), None);
    }

    #[test]
    fn requests_round_up_to_the_smallest_spec_that_holds_them() {
        assert_eq!(round_up_spec(0.1, 0.1), Some((0.25, 0.5)));
        assert_eq!(round_up_spec(0.3, 0.2), Some((0.5, 1.0)));
        assert_eq!(round_up_spec(1.5, 3.0), Some((2.0, 4.0)));
        assert_eq!(round_up_spec(7.0, 13.0), Some((8.0, 16.0)));
        // More memory than a vCPU count offers moves up to more vCPUs.
        assert_eq!(round_up_spec(1.0, 10.0), Some((2.0, 16.0)));
        assert_eq!(round_up_spec(2.0, 4.0), Some(DEFAULT_SPEC));
    }

    #[test]
    fn requests_past_every_spec_have_none() {
        assert_eq!(round_up_spec(65.0, 1.0), None);
        assert_eq!(round_up_spec(100.0, 1.0), None);
        assert_eq!(round_up_spec(2.0, 600.0), None);
    }
}
