//! Exact factorials with malachite (pure Rust, GMP's algorithms: prime-swing factorial and
//! subquadratic radix conversion), so large N is faster than CPython's `math.factorial` plus `str()`.

use malachite_base::num::arithmetic::traits::Factorial;
use malachite_nz::natural::Natural;

use crate::error::ApiError;

/// N at or below this is computed on the request's task (microseconds); above it, on a thread of its own.
pub const INLINE_MAX: u64 = 1_000;

/// Stack for the computing threads: malachite's divide-and-conquer recursion needs more than the
/// 2 MiB tokio gives its blocking threads (debug builds overflow it for N = 100000). Only touched
/// pages are committed.
pub const STACK_SIZE: usize = 64 * 1024 * 1024;

/// Computes N! on a thread of its own (with [`STACK_SIZE`]); `permit` is held until the computation
/// ends, even when the request is dropped (timeout, client gone), so concurrent computations stay
/// bounded by the semaphore the permit came from.
pub async fn factorial_on_thread(n: u64, permit: tokio::sync::OwnedSemaphorePermit) -> Result<String, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("factorial".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let result = factorial_decimal(n);
            drop(permit);
            let _ = tx.send(result);
        })
        .map_err(|e| ApiError::Internal(format!("starting a factorial thread: {e}")))?;
    rx.await.map_err(|_| ApiError::Internal("the factorial thread died".into()))
}

/// N! as a decimal string.
pub fn factorial_decimal(n: u64) -> String {
    Natural::factorial(n).to_string()
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
