//! A manifest, index or image config as a registry serves it, read as a pull reads it (see
//! `eci_vk::agent::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eci_vk::agent::fuzz::oci_manifest(data));
