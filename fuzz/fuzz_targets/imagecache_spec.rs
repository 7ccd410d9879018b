//! An ImageCache object as the watch hands it to the node (see `eci_vk::imagecache::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eci_vk::imagecache::fuzz::spec(data));
