//! Exact factorials with malachite (pure Rust, GMP's algorithms: prime-swing factorial and
//! subquadratic radix conversion), so large N is faster than CPython's `math.factorial` plus `str()`.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use malachite_base::num::{
    arithmetic::traits::{DivRem, Factorial, ModPowerOf2, Pow},
    logic::traits::SignificantBits,
};
use malachite_nz::natural::Natural;

use crate::{error::ApiError, metrics::Metrics};

/// N at or below this is computed on the request's task (microseconds); above it, on a thread of its own.
pub const INLINE_MAX: u64 = 1_000;

/// Stack for the computing threads: malachite's divide-and-conquer recursion needs more than the
/// 2 MiB tokio gives its blocking threads (debug builds overflow it for N = 100000). Only touched
/// pages are committed.
pub const STACK_SIZE: usize = 64 * 1024 * 1024;

/// Largest number converted to decimal in one uninterrupted step: 2^20 bits (315,653 digits, about
/// 20 ms). Larger numbers are split into pieces of at most this size, with a cancellation check
/// between pieces. N! stays below it up to N = 72,000, so those convert exactly as before.
const PIECE_BITS: u64 = 1 << 20;

/// Set when nobody waits for a computation any more (the request timed out, the client went away, the
/// server shut down); the computing thread sees it between steps and stops.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the computation to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Cancels when dropped: the request future owns it, so every way a request ends early (timeout,
/// disconnect, shutdown) drops it.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Computes N! on a thread of its own (with [`STACK_SIZE`]). `permit` is held until the thread ends,
/// so concurrent computations stay bounded by the semaphore the permit came from. When the returned
/// future is dropped before the answer (timeout, client gone), the thread stops at its next step
/// (see [`factorial_decimal_until`]) and frees the permit: a computation nobody waits for costs at
/// most one step of CPU, not the whole N.
pub async fn factorial_on_thread(
    n: u64,
    permit: tokio::sync::OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
) -> Result<String, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let cancel = Cancel::default();
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    std::thread::Builder::new()
        .name("factorial".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let running = metrics.factorial_started();
            let result = factorial_decimal_until(n, &cancel);
            drop(permit);
            match result {
                Some(digits) => {
                    let _ = tx.send(digits);
                }
                None => {
                    running.cancelled();
                    tracing::debug!(n, "factorial stopped: nobody waits for it any more");
                }
            }
        })
        .map_err(|e| ApiError::Internal(format!("starting a factorial thread: {e}")))?;
    rx.await.map_err(|_| ApiError::Internal("the factorial thread died".into()))
}

/// N! as a decimal string.
pub fn factorial_decimal(n: u64) -> String {
    Natural::factorial(n).to_string()
}

/// N! as a decimal string, or `None` as soon as `cancel` is seen. The steps: N! itself (one call,
/// malachite's prime-swing algorithm: 10 ms for N = 100,000, 0.14 s for 1,000,000), then its decimal
/// digits, which take four fifths of the time and are produced piece by piece (see [`PIECE_BITS`]).
pub fn factorial_decimal_until(n: u64, cancel: &Cancel) -> Option<String> {
    if cancel.is_cancelled() {
        return None;
    }
    let value = Natural::factorial(n);
    decimal_until(value, cancel)
}

/// `10^digits`, kept as `5^digits` and a shift: dividing by the odd part alone is a smaller division.
struct PowerOfTen {
    five: Natural,
    digits: u64,
}

/// Decimal digits of `x`, piece by piece: divide and conquer by powers of ten (`10^(d·2^k)`), each
/// piece at most [`PIECE_BITS`] converted by malachite, with a cancellation check before every step.
fn decimal_until(x: Natural, cancel: &Cancel) -> Option<String> {
    if x.significant_bits() <= PIECE_BITS {
        return (!cancel.is_cancelled()).then(|| x.to_string());
    }
    // Leaves hold d digits, about half a piece's bits.
    let leaf_digits = (PIECE_BITS as f64 / 2.0 / std::f64::consts::LOG2_10) as u64;
    let mut powers = vec![PowerOfTen { five: Natural::from(5u32).pow(leaf_digits), digits: leaf_digits }];
    // Square until the largest power squared exceeds x: the top split then leaves both halves below it.
    while let Some(last) =
        powers.last().filter(|p| 2 * (p.five.significant_bits() + p.digits) <= x.significant_bits() + 2)
    {
        if cancel.is_cancelled() {
            return None;
        }
        let next = PowerOfTen { five: &last.five * &last.five, digits: 2 * last.digits };
        powers.push(next);
    }
    let mut out = String::with_capacity((x.significant_bits() as f64 / std::f64::consts::LOG2_10) as usize + 1);
    let top = powers.len();
    write_decimal(x, top, false, &powers, &mut out, cancel)?;
    Some(out)
}

/// Appends `x`'s digits: at `level` 0 converted whole (left-padded with zeros to the leaf width when
/// `pad`), else split by `powers[level - 1]` into a high and a low half (the low half always padded).
fn write_decimal(
    x: Natural,
    level: usize,
    pad: bool,
    powers: &[PowerOfTen],
    out: &mut String,
    cancel: &Cancel,
) -> Option<()> {
    if cancel.is_cancelled() {
        return None;
    }
    if level == 0 {
        let digits = x.to_string();
        if pad {
            out.extend(std::iter::repeat_n('0', (powers[0].digits as usize).saturating_sub(digits.len())));
        }
        out.push_str(&digits);
        return Some(());
    }
    let power = &powers[level - 1];
    // x = q·10^d + r, with 10^d = 5^d·2^d: q = (x >> d) / 5^d, r = ((x >> d) % 5^d) << d | (x mod 2^d).
    let low = (&x).mod_power_of_2(power.digits);
    let (high, rest) = (x >> power.digits).div_rem(&power.five);
    let low = (rest << power.digits) | low;
    if !pad && high == 0u32 {
        return write_decimal(low, level - 1, false, powers, out, cancel);
    }
    write_decimal(high, level - 1, pad, powers, out, cancel)?;
    write_decimal(low, level - 1, true, powers, out, cancel)
}

/// Parses the `number` query parameter: ASCII digits only (no sign, no decimal point, no exponent,
/// no spaces), at most `max`.
pub fn parse_number(raw: Option<&str>, max: u64) -> Result<u64, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::BadRequest("query parameter `number` is required".into()))?;
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest("`number` must be a non-negative integer".into()));
    }
    let trimmed = raw.trim_start_matches('0');
    let too_large = || ApiError::BadRequest(format!("`number` must be at most {max}"));
    if trimmed.len() > 20 {
        return Err(too_large());
    }
    let n: u64 = if trimmed.is_empty() { 0 } else { trimmed.parse().map_err(|_| too_large())? };
    if n > max {
        return Err(too_large());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_factorials_are_exact() {
        assert_eq!(factorial_decimal(0), "1");
        assert_eq!(factorial_decimal(1), "1");
        assert_eq!(factorial_decimal(5), "120");
        assert_eq!(factorial_decimal(25), "15511210043330985984000000");
    }

    #[test]
    fn large_numbers_convert_piece_by_piece_to_the_same_digits() {
        // Below, at, and well above one piece; powers of ten and their neighbours (all-zero and
        // all-nine low pieces test the padding).
        let piece_digits = (PIECE_BITS as f64 / std::f64::consts::LOG2_10) as u64;
        let mut values: Vec<Natural> = [20_000u64, 72_000, 100_000, 250_000].map(Natural::factorial).into();
        for digits in [piece_digits - 10, piece_digits + 10, 3 * piece_digits] {
            let power = Natural::from(10u32).pow(digits);
            values.push(&power - Natural::from(1u32));
            values.push(&power + Natural::from(1u32));
            values.push(power);
        }
        for value in values {
            let expected = value.to_string();
            let got = decimal_until(value, &Cancel::default()).expect("not cancelled");
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "digits differ for a {}-digit number", expected.len());
        }
    }

    #[test]
    fn a_cancelled_computation_stops() {
        let cancel = Cancel::default();
        cancel.cancel();
        assert_eq!(factorial_decimal_until(300_000, &cancel), None);
        assert_eq!(decimal_until(Natural::factorial(300_000), &cancel), None);
        assert_eq!(factorial_decimal_until(5, &Cancel::default()).as_deref(), Some("120"));
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(parse_number(Some("10"), 100).unwrap(), 10);
        assert_eq!(parse_number(Some("0"), 100).unwrap(), 0);
        assert_eq!(parse_number(Some("007"), 100).unwrap(), 7);
        for bad in ["", "-1", "+1", "1.0", "1e3", " 1", "abc", "١٢"] {
            assert!(parse_number(Some(bad), 100).is_err(), "{bad:?}");
        }
        assert!(parse_number(Some("101"), 100).is_err());
        assert!(parse_number(Some("99999999999999999999999999"), u64::MAX).is_err());
        assert!(parse_number(None, 100).is_err());
    }
}
