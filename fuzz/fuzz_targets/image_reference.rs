//! Image references as pods, ImageCaches and registry logins give them (see
//! `eci_vk::reference::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eci_vk::reference::fuzz::parse(data));
