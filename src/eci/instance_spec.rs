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

/// The smallest spec with at least `cpu` vCPUs and `memory` GiB (fewest vCPUs first, then
/// least memory), or `None` when no spec is that big.
pub fn round_up_spec(cpu: f64, memory: f64) -> Option<(f64, f64)> {
    SPECS
        .iter()
        .filter(|(c, _)| *c >= cpu)
        .find_map(|(c, mems)| mems.iter().find(|m| **m >= memory).map(|m| (*c, *m)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
