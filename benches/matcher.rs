//! One pod against 10,000 Ready caches of 20 images each: the cost of choosing a snapshot when
//! a pod is created (DESIGN.md "A snapshot for a pod"). The index is built once, as the node
//! keeps it; each iteration is one `CacheIndex::select`.
//!
//! Two shapes: `typical` (the pod's images are spread over a pool of 2,000 images, so a few
//! hundred caches are candidates) and `shared_base` (every cache also holds one image the pod
//! uses, so all 10,000 are candidates).
// Test and benchmark code, not shipped: a failed assumption may panic, and it times with
// the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use eci_vk::imagecache::{CacheEntry, CacheIndex, CachedImage, MatchOptions, Origin, READY_PHASE};
use jiff::{SignedDuration, Timestamp};

const CACHES: usize = 10_000;
const IMAGES_PER_CACHE: usize = 20;
const POOL: u64 = 2_000;

/// A small deterministic generator, so every run measures the same index.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn image(n: u64) -> String {
    match n % 3 {
        0 => format!("app{n}:v{}", n % 7),
        1 => format!("team{}/svc{n}:1.{}", n % 11, n % 5),
        _ => format!("registry.example.com:5000/ns/img{n}:latest"),
    }
}

fn index(shared_base: bool) -> CacheIndex {
    let mut rng = SplitMix(7);
    let epoch: Timestamp = "2026-01-01T00:00:00Z".parse().expect("timestamp");
    CacheIndex::from_entries((0..CACHES).map(|i| {
        let mut images: Vec<CachedImage> = (0..IMAGES_PER_CACHE)
            .map(|_| CachedImage {
                reference: image(rng.next() % POOL),
                bytes: rng.next() % (500 << 20),
                digests: Vec::new(),
            })
            .collect();
        if shared_base {
            images[0].reference = "busybox:1.36".into();
        }
        CacheEntry {
            id: format!("imc-{i:020}"),
            name: format!("cache-{i}"),
            phase: READY_PHASE.into(),
            expires: None,
            created: epoch + SignedDuration::from_secs(i as i64),
            images,
            size_gib: 20,
            origin: Origin::Object,
            last_matched: None,
            stale: false,
            private_registries: Vec::new(),
        }
    }))
}

fn bench(c: &mut Criterion) {
    let now: Timestamp = "2026-02-01T00:00:00Z".parse().expect("timestamp");
    let pod = [
        image(3),
        image(10),
        image(101),
        image(1_999),
        "busybox:1.36".to_owned(),
    ];
    for (name, shared) in [("typical", false), ("shared_base", true)] {
        let index = index(shared);
        c.bench_function(&format!("select/10k_caches_x20/{name}"), |b| {
            b.iter(|| {
                let report = index.select(black_box(&pod), MatchOptions::default(), now);
                black_box(report.winner().map(|w| w.matched));
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
