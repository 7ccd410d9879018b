//! Kubernetes resource quantities (`100m`, `0.5`, `1.5Gi`, `1e3`, `2Ei`): the one parser the
//! node's settings, the pod translation and the emulator's sizes all read them with, so a value
//! one of them accepts is never refused or read as zero by another.
//!
//! The grammar is apimachinery's `resource.Quantity`, limited to non-negative values:
//!
//! ```text
//! quantity  ::= ["+"] number suffix
//! number    ::= digits | digits "." [digits] | "." digits
//! suffix    ::= "" | binarySI | decimalSI | ("e" | "E") ["+" | "-"] digits
//! binarySI  ::= Ki | Mi | Gi | Ti | Pi | Ei
//! decimalSI ::= n | u | m | k | M | G | T | P | E
//! ```
//!
//! No whitespace is allowed anywhere, as in Kubernetes. Values are kept exact (an integer
//! mantissa with powers of ten and two) and rounded only when converted: to bytes and to
//! millicores upwards, as the kubelet does (`Quantity.Value()`, `MilliValue()`).
//!
//! Why not the `kube_quantity` crate: its number is optional, so `Gi` parses as zero; it reads
//! the number through an `f64` (nom's float grammar), which loses exactness for large values;
//! and it would add `rust_decimal` and `nom` 8 to the build for what is fifty lines here.
//!
//! A leaf: it imports nothing from the crate.

use std::fmt;

/// Why a string is not a usable quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The value is empty.
    #[error("quantity is empty")]
    Empty,
    /// The value does not follow the quantity grammar (`1.2.3`, `Gi`, `4 Gi`, `x`).
    #[error("{value:?} is not a quantity (expected e.g. 100m, 0.5, 1Gi, 1e3)")]
    Malformed {
        /// The value as given.
        value: String,
    },
    /// The value is negative; resources and sizes cannot be.
    #[error("quantity {value:?} is negative")]
    Negative {
        /// The value as given.
        value: String,
    },
    /// The value does not fit the unit asked for (more than `u64::MAX` bytes or millicores).
    #[error("quantity {value:?} is too large")]
    TooLarge {
        /// The value as given.
        value: String,
    },
}

/// A parsed, non-negative quantity: `mantissa × 10^exp10 × 2^exp2`, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

/// Parses `value` as a non-negative quantity.
///
/// # Errors
/// [`QuantityError`] naming the value when it is empty, malformed, negative or has so many
/// digits that it cannot be held.
pub fn parse(value: &str) -> Result<Quantity, QuantityError> {
    Quantity::parse(value)
}

/// Whether `value` is a valid non-negative quantity.
pub fn is_valid(value: &str) -> bool {
    Quantity::parse(value).is_ok()
}

/// The number of CPU cores `value` names (`100m` → 0.1, `2` → 2.0).
///
/// # Errors
/// As [`parse`].
pub fn cpu_cores(value: &str) -> Result<f64, QuantityError> {
    Quantity::parse(value).map(|q| q.value())
}

/// The millicores `value` names, rounded up (`0.5` → 500, `1u` → 1).
///
/// # Errors
/// As [`parse`], and [`QuantityError::TooLarge`] past `u64::MAX`.
pub fn millicores(value: &str) -> Result<u64, QuantityError> {
    Quantity::parse(value)?
        .millis()
        .ok_or_else(|| QuantityError::TooLarge {
            value: value.to_owned(),
        })
}

/// The bytes `value` names, rounded up to a whole byte (`1.5Gi` → 1610612736, `1k` → 1000).
///
/// # Errors
/// As [`parse`], and [`QuantityError::TooLarge`] past `u64::MAX`.
pub fn bytes(value: &str) -> Result<u64, QuantityError> {
    Quantity::parse(value)?
        .units()
        .ok_or_else(|| QuantityError::TooLarge {
            value: value.to_owned(),
        })
}

// === impl Quantity ===

impl Quantity {
    /// Parses `value`; see [`parse`].
    ///
    /// # Errors
    /// As [`parse`].
    pub fn parse(value: &str) -> Result<Self, QuantityError> {
        if value.is_empty() {
            return Err(QuantityError::Empty);
        }
        let malformed = || QuantityError::Malformed {
            value: value.to_owned(),
        };
        if let Some(magnitude) = value.strip_prefix('-') {
            // Negative only when the rest is a quantity (`-1`, not `-x`); `-0` is zero.
            return match Self::parse(magnitude) {
                Ok(q) if q.mantissa == 0 => Ok(q),
                Ok(_) => Err(QuantityError::Negative {
                    value: value.to_owned(),
                }),
                Err(_) => Err(malformed()),
            };
        }
        let rest = value.strip_prefix('+').unwrap_or(value);
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = rest.split_at(int_len);
        let (frac_digits, rest) = match rest.strip_prefix('.') {
            Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", rest),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(malformed());
        }
        let mut mantissa: u128 = 0;
        for digit in int_digits.bytes().chain(frac_digits.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or_else(|| QuantityError::TooLarge {
                    value: value.to_owned(),
                })?;
        }
        let frac_len = i32::try_from(frac_digits.len()).map_err(|_| malformed())?;
        let (exp10, exp2) = suffix(rest).ok_or_else(malformed)?;
        Ok(Self {
            mantissa,
            exp10: exp10 - frac_len,
            exp2,
        })
    }

    /// The value as a float (cores, bytes, whatever the unit is).
    pub fn value(&self) -> f64 {
        // Precision loss is fine here: this is the floating view for ratios and cores.
        #[allow(clippy::cast_precision_loss)]
        let mantissa = self.mantissa as f64;
        let binary = 2f64.powi(i32::try_from(self.exp2).unwrap_or(i32::MAX));
        // Divide by an exact power of ten rather than multiply by an inexact 0.001.
        if self.exp10 < 0 {
            mantissa / 10f64.powi(-self.exp10) * binary
        } else {
            mantissa * 10f64.powi(self.exp10) * binary
        }
    }

    /// The value in whole units, rounded up; `None` past `u64::MAX`.
    pub fn units(&self) -> Option<u64> {
        self.scaled(0)
    }

    /// The value in thousandths, rounded up; `None` past `u64::MAX`.
    pub fn millis(&self) -> Option<u64> {
        self.scaled(3)
    }

    /// `value × 10^shift`, rounded up.
    fn scaled(&self, shift: i32) -> Option<u64> {
        if self.mantissa == 0 {
            return Some(0);
        }
        let numerator = self.mantissa.checked_mul(1u128.checked_shl(self.exp2)?)?;
        let exp = self.exp10 + shift;
        let exact = if exp >= 0 {
            numerator.checked_mul(10u128.checked_pow(exp.unsigned_abs())?)?
        } else {
            match 10u128.checked_pow(exp.unsigned_abs()) {
                Some(denominator) => numerator.div_ceil(denominator),
                // Smaller than any u128 denominator holds: a positive sliver rounds up to one.
                None => 1,
            }
        };
        u64::try_from(exact).ok()
    }
}

impl fmt::Display for Quantity {
    /// The exact value as `mantissa`, with `e<exp10>` and `*2^<exp2>` when they are not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mantissa)?;
        if self.exp10 != 0 {
            write!(f, "e{}", self.exp10)?;
        }
        if self.exp2 != 0 {
            write!(f, "*2^{}", self.exp2)?;
        }
        Ok(())
    }
}

/// The powers of ten and two a suffix stands for.
fn suffix(text: &str) -> Option<(i32, u32)> {
    let known = match text {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => return exponent(text).map(|e| (e, 0)),
    };
    Some(known)
}

/// The `e<signed digits>` / `E<signed digits>` decimal exponent.
fn exponent(text: &str) -> Option<i32> {
    let digits = text.strip_prefix(['e', 'E'])?;
    let (negative, digits) = match digits.as_bytes().first()? {
        b'-' => (true, &digits[1..]),
        b'+' => (false, &digits[1..]),
        _ => (false, digits),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Past a few hundred the value is zero or overflows anyway; bound it so i32 holds it.
    let e: i32 = digits.parse().ok().filter(|e: &i32| *e <= 1000)?;
    Some(if negative { -e } else { e })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_are_numbers() {
        // `1e3` used to pass the pod translation but fail the settings.
        assert_eq!(bytes("1e3"), Ok(1000));
        assert_eq!(bytes("1E3"), Ok(1000));
        assert_eq!(bytes("15e-1"), Ok(2));
        assert!(is_valid("1e3"));
    }

    #[test]
    fn fractions_of_binary_units() {
        // `1.5Gi` used to be read as 0 bytes by the emulator.
        assert_eq!(bytes("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(bytes("1Ki"), Ok(1024));
        assert_eq!(bytes("2Ei"), Ok(2 << 60));
        assert_eq!(bytes("512Mi"), Ok(512 << 20));
    }

    #[test]
    fn decimal_suffixes() {
        assert_eq!(bytes("1k"), Ok(1000));
        assert_eq!(bytes("1E"), Ok(1_000_000_000_000_000_000));
        assert_eq!(bytes("1G"), Ok(1_000_000_000));
        assert_eq!(bytes("100"), Ok(100));
        assert_eq!(bytes("0"), Ok(0));
    }

    #[test]
    fn cpu_in_cores_and_millicores() {
        assert_eq!(cpu_cores("100m"), Ok(0.1));
        assert_eq!(cpu_cores("0.5"), Ok(0.5));
        assert_eq!(cpu_cores("2"), Ok(2.0));
        assert_eq!(millicores("100m"), Ok(100));
        assert_eq!(millicores("0.5"), Ok(500));
        assert_eq!(millicores(".25"), Ok(250));
        assert_eq!(millicores("1."), Ok(1000));
        // Rounded up, as the kubelet does.
        assert_eq!(millicores("1u"), Ok(1));
        assert_eq!(bytes("100m"), Ok(1));
    }

    #[test]
    fn bad_quantities_are_refused() {
        assert_eq!(parse(""), Err(QuantityError::Empty));
        for bad in [
            "Gi", "1.2.3", "4 Gi", " 4Gi", "x", "1K", "1e", "1e+", "1Gi ", ".", "1.5.Gi", "1GiB",
            "e3", "--1", "-x",
        ] {
            assert!(
                matches!(parse(bad), Err(QuantityError::Malformed { .. })),
                "{bad:?} was accepted: {:?}",
                parse(bad)
            );
            assert!(!is_valid(bad));
        }
        assert!(matches!(parse("-1"), Err(QuantityError::Negative { .. })));
        assert!(matches!(parse("-1Gi"), Err(QuantityError::Negative { .. })));
        assert_eq!(bytes("-0"), Ok(0));
        assert_eq!(bytes("+1k"), Ok(1000));
    }

    #[test]
    fn too_large_for_the_unit() {
        assert!(matches!(bytes("16Ei"), Err(QuantityError::TooLarge { .. })));
        assert!(matches!(bytes("1e30"), Err(QuantityError::TooLarge { .. })));
        assert!(is_valid("1e30"));
        assert!(matches!(
            parse("1234567890123456789012345678901234567890"),
            Err(QuantityError::TooLarge { .. })
        ));
    }

    #[test]
    fn tiny_values_round_up_to_one() {
        assert_eq!(bytes("1e-900"), Ok(1));
        assert_eq!(bytes("0e-900"), Ok(0));
    }
}

/// Entry point of the `quantity` fuzz target (`fuzz/`, issue #20). Not an API.
#[doc(hidden)]
pub mod fuzz {
    /// Any text as a quantity: never a panic, and the validity check agrees with the parser.
    pub fn parse(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let parsed = super::parse(text);
        assert_eq!(super::is_valid(text), parsed.is_ok(), "{text:?}");
        let _ = super::cpu_cores(text);
        let _ = super::millicores(text);
        let _ = super::bytes(text);
        if let Ok(q) = parsed {
            let _ = (q.value(), q.units(), q.millis());
        }
    }
}
