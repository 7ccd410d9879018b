//! Entry points for the fuzz targets of `fuzz/` (issue #20), kept in this room so the targets
//! reach only what the node itself runs on an object it reads. Not an API: hidden from the docs.

use super::{ImageCache, entry_of, reconciler};

/// An ImageCache as the watch hands it over (any JSON): deserialised, then read as a reconcile
/// reads it (annotations, size, retention), indexed as the matcher indexes it, and its images
/// parsed as references. Must never panic, whatever the bytes.
pub fn spec(data: &[u8]) {
    let Ok(object) = serde_json::from_slice::<ImageCache>(data) else {
        return;
    };
    let _ = reconciler::read_object(&object);
    let _ = entry_of(&object);
    for image in &object.spec.images {
        if let Ok(parsed) = crate::reference::ImageRef::parse(image) {
            let _ = parsed.key();
        }
    }
}
