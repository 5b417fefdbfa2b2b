//! The three ways Envoy turns a double into text, because each admin format uses a different one
//! and scripts compare the strings:
//!
//! * `fmt::format("{}")` (text `/stats` quantiles): shortest round-trip digits, fixed notation
//!   unless the decimal exponent is `< -4` or `>= 16`, `nan` for NaN.
//! * `printf("%.Ng")` / `fmt "{:.Ng}"` (Prometheus `le`/`_sum`, text bucket labels).
//! * `std::to_chars(double)` (JSON, via `Buffer::Util::serializeDouble` on libc++ builds):
//!   shortest digits, and whichever of fixed/scientific is shorter, fixed on a tie.

use std::fmt::Write;

/// A fixed-size `fmt::Write` target: renderers format thousands of numbers per scrape and
/// should not allocate for each one.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 40],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only `fmt` output (ASCII for numbers) is ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Significant digits (no sign, no point) and decimal exponent, i.e. `d.ddd × 10^exp`.
struct Digits {
    digits: StackBuf,
    exp: i32,
}

impl Digits {
    fn as_str(&self) -> &str {
        self.digits.as_str()
    }
}

/// Parses Rust's `{:e}` output (`"1.05e0"`, `"1e16"`) for a non-negative finite value.
fn split_sci(sci: &str) -> Digits {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let mut digits = StackBuf::new();
    for part in mantissa.split('.') {
        let _ = digits.write_str(part);
    }
    Digits {
        digits,
        exp: exp.parse().unwrap_or(0),
    }
}

/// Shortest round-trip digits of a finite double.
fn shortest_digits(x: f64) -> Digits {
    let mut sci = StackBuf::new();
    let _ = write!(sci, "{:e}", x.abs());
    split_sci(sci.as_str())
}

/// Appends a decimal integer without going through `fmt` (scrapes print thousands of them).
pub(super) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

fn write_fixed(out: &mut String, digits: &str, exp: i32) {
    if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(digits);
    }
}

fn write_sci(out: &mut String, digits: &str, exp: i32) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let _ = write!(
        out,
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    );
}

fn fixed_len(digits: &str, exp: i32) -> usize {
    if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            int_len
        } else {
            digits.len() + 1
        }
    } else {
        2 + (-exp - 1) as usize + digits.len()
    }
}

fn sci_len(digits: &str, exp: i32) -> usize {
    let exp_digits = exp.unsigned_abs().to_string().len().max(2);
    digits.len() + usize::from(digits.len() > 1) + 2 + exp_digits
}

fn non_finite(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("nan")
    } else if x == f64::INFINITY {
        Some("inf")
    } else if x == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

/// `fmt::format("{}", x)`.
pub(super) fn write_fmt_shortest(out: &mut String, x: f64) {
    if let Some(s) = non_finite(x) {
        out.push_str(s);
        return;
    }
    if x.is_sign_negative() && x != 0.0 {
        out.push('-');
    }
    let d = shortest_digits(x);
    if !(-4..16).contains(&d.exp) {
        write_sci(out, d.as_str(), d.exp);
    } else {
        write_fixed(out, d.as_str(), d.exp);
    }
}

/// `std::to_chars(first, last, x)` without a format argument.
pub(super) fn write_to_chars(out: &mut String, x: f64) {
    if let Some(s) = non_finite(x) {
        out.push_str(s);
        return;
    }
    if x.is_sign_negative() && x != 0.0 {
        out.push('-');
    }
    let d = shortest_digits(x);
    if sci_len(d.as_str(), d.exp) < fixed_len(d.as_str(), d.exp) {
        write_sci(out, d.as_str(), d.exp);
    } else {
        write_fixed(out, d.as_str(), d.exp);
    }
}

/// C's `%.{precision}g`.
pub(super) fn format_g(x: f64, precision: usize) -> String {
    if let Some(s) = non_finite(x) {
        return s.to_string();
    }
    let p = precision.max(1);
    let mut out = String::new();
    if x.is_sign_negative() && x != 0.0 {
        out.push('-');
    }
    // `%g` formats only a couple of numbers per histogram, so the simple allocating path is fine.
    let sci = format!("{:.*e}", p - 1, x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if exp < -4 || exp >= p as i32 {
        write_sci(&mut out, digits, exp);
    } else {
        write_fixed(&mut out, digits, exp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shortest(x: f64) -> String {
        let mut s = String::new();
        write_fmt_shortest(&mut s, x);
        s
    }

    fn to_chars(x: f64) -> String {
        let mut s = String::new();
        write_to_chars(&mut s, x);
        s
    }

    #[test]
    fn fmt_shortest_matches_libfmt() {
        assert_eq!(shortest(1.0), "1");
        assert_eq!(shortest(1.05), "1.05");
        assert_eq!(shortest(2.0996), "2.0996");
        assert_eq!(shortest(1.0 + 0.0995), "1.0995");
        assert_eq!(shortest(f64::NAN), "nan");
        assert_eq!(shortest(0.0), "0");
        assert_eq!(shortest(1e15), "1000000000000000");
        assert_eq!(shortest(1e16), "1e+16");
        assert_eq!(shortest(1.5e17), "1.5e+17");
        assert_eq!(shortest(0.0001), "0.0001");
        assert_eq!(shortest(0.00001), "1e-05");
        assert_eq!(shortest(3600000.0), "3600000");
    }

    #[test]
    fn to_chars_picks_shorter_notation() {
        assert_eq!(to_chars(0.0), "0");
        assert_eq!(to_chars(99.5), "99.5");
        assert_eq!(to_chars(100.0), "100");
        assert_eq!(to_chars(10000.0), "10000"); // tie with 1e+04 -> fixed
        assert_eq!(to_chars(100000.0), "1e+05");
        assert_eq!(to_chars(300000.0), "3e+05");
        assert_eq!(to_chars(3600000.0), "3600000"); // tie with 3.6e+06 -> fixed
        assert_eq!(to_chars(1000000.0), "1e+06");
        assert_eq!(to_chars(209.98), "209.98");
        assert_eq!(to_chars(0.001), "0.001");
        assert_eq!(to_chars(0.0001), "1e-04");
    }

    #[test]
    fn format_g_matches_printf() {
        assert_eq!(format_g(0.5, 32), "0.5");
        assert_eq!(format_g(3600000.0, 32), "3600000");
        assert_eq!(format_g(0.0, 32), "0");
        assert_eq!(format_g(1.05, 32), "1.0500000000000000444089209850063");
        assert_eq!(format_g(3600000.0, 6), "3.6e+06");
        assert_eq!(format_g(600000.0, 6), "600000");
        assert_eq!(format_g(0.5, 6), "0.5");
        assert_eq!(format_g(99.5, 6), "99.5");
        assert_eq!(format_g(1e-5, 6), "1e-05");
        assert_eq!(format_g(123456789.0, 6), "1.23457e+08");
        assert_eq!(format_g(f64::NAN, 32), "nan");
    }
}
