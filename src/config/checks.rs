//! Checks of setting values shared by several settings: names, label values, quantities.

/// A DNS-1123 label-ish name (at most 63 so it also fits a label value and a tag).
pub(super) fn valid_node_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// A label value: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
pub(super) fn valid_label_value(value: &str) -> bool {
    (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// A non-negative decimal with an optional Kubernetes suffix.
pub(super) fn valid_quantity(value: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    SUFFIXES.iter().any(|suffix| {
        value.strip_suffix(suffix).is_some_and(|number| {
            !number.is_empty()
                && number.bytes().filter(|b| *b == b'.').count() <= 1
                && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && number.bytes().any(|b| b.is_ascii_digit())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["1", "500m", "4Gi", "1.5", "10Ti", "0"] {
            assert!(valid_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "-1", "1.2.3", "4 Gi", "x"] {
            assert!(!valid_quantity(bad), "{bad}");
        }
    }
}
