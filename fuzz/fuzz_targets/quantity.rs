//! Kubernetes quantities as pods' resources and annotations carry them (see
//! `eci_vk::quantity::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eci_vk::quantity::fuzz::parse(data));
