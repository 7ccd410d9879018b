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

/// A non-negative Kubernetes quantity (the one parser, [`crate::quantity`]).
pub(super) fn valid_quantity(value: &str) -> bool {
    crate::quantity::is_valid(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        // `1e3` used to pass the pods' parser but fail here: one parser now answers both.
        for ok in ["1", "500m", "4Gi", "1.5", "10Ti", "0", "1e3", "2Ei"] {
            assert!(valid_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "-1", "1.2.3", "4 Gi", "x"] {
            assert!(!valid_quantity(bad), "{bad}");
        }
    }
}
