//! How often a sync pass may run and how long its describe may take, from the number of groups
//! it last described and ECI's read quota.
//!
//! A pass describes every group of the node, 20 a page (ECI's largest): 5 pages at 100 pods,
//! 500 at 10,000. Those pages share `DescribeContainerGroups`' quota (about 31 a second) with the looks
//! at starting groups, which are what turns a started group into a Running pod within a second.
//! Passes woken back to back by watch events would take the whole quota at 10,000 pods, and
//! looks would wait behind 500 pages each (measured: passes timed out at 90 s and 186 started
//! pods stayed `ContainerCreating`; BENCHMARKS.md, "Round two"). So a pass is spaced to take at
//! most [`PASS_SHARE`] of the quota, and its describe's time limit grows with its pages.

use std::time::Duration;

use super::context::ECI_TIMEOUT;
use crate::eci::DescribeContainerGroups;

/// Groups on one page of the pass's describe.
const PAGE: usize = DescribeContainerGroups::MAX_LIMIT as usize;

/// The share of `DescribeContainerGroups`' quota the passes may take; the rest is the looks'.
const PASS_SHARE: f64 = 0.5;

/// The spacing and time limit of passes over a node of a given size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PassPace {
    /// Sustained `DescribeContainerGroups` calls a second the client allows; `None` when its
    /// budget is off (an endpoint without quotas).
    read_rate: Option<f64>,
    /// Pages the last describe took (at least 1).
    pages: usize,
}

impl PassPace {
    pub(super) fn new(read_rate: Option<f64>) -> Self {
        Self {
            read_rate: read_rate.filter(|r| r.is_finite() && *r > 0.0),
            pages: 1,
        }
    }

    /// Records the size of the describe a pass just made.
    pub(super) fn described(&mut self, groups: usize) {
        self.pages = groups.div_ceil(PAGE).max(1);
    }

    /// The shortest time from one pass's start to the next's: its pages at [`PASS_SHARE`] of
    /// the read quota.
    pub(super) fn spacing(&self) -> Duration {
        self.read_rate.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(self.pages as f64 / (rate * PASS_SHARE))
        })
    }

    /// How long the describe may take before the pass is skipped: [`ECI_TIMEOUT`] for a call,
    /// plus each further page's turn in the quota if every page waited behind the looks.
    pub(super) fn describe_timeout(&self) -> Duration {
        let per_page = self
            .read_rate
            .map_or(Duration::ZERO, |rate| Duration::from_secs_f64(1.0 / rate));
        ECI_TIMEOUT + per_page.mul_f64(self.pages as f64 / (1.0 - PASS_SHARE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: f64 = 1900.0 / 60.0;

    #[test]
    fn a_small_node_is_not_held_back() {
        let mut pace = PassPace::new(Some(QUOTA));
        pace.described(20);
        assert!(pace.spacing() < Duration::from_millis(100), "{pace:?}");
        assert!(pace.describe_timeout() < ECI_TIMEOUT + Duration::from_secs(1));
    }

    #[test]
    fn ten_thousand_pods_take_half_the_quota_and_get_the_time_their_pages_need() {
        let mut pace = PassPace::new(Some(QUOTA));
        pace.described(10_000);
        // 500 pages at half of 31.7 a second.
        let spacing = pace.spacing().as_secs_f64();
        assert!((spacing - 500.0 / (QUOTA / 2.0)).abs() < 1e-6, "{spacing}");
        // Every page behind the looks' half: 500 pages at 15.8 a second, past the flat 90 s.
        assert!(pace.describe_timeout() > ECI_TIMEOUT + Duration::from_secs(31));
    }

    #[test]
    fn without_a_quota_passes_are_not_spaced() {
        let mut pace = PassPace::new(None);
        pace.described(10_000);
        assert_eq!(pace.spacing(), Duration::ZERO);
        assert_eq!(pace.describe_timeout(), ECI_TIMEOUT);
        assert_eq!(PassPace::new(Some(0.0)).spacing(), Duration::ZERO);
    }
}
