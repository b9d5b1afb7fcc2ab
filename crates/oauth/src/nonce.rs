//! Stateless rotating server DPoP nonces (RFC 9449 §8).
//!
//! `nonce = base64url(HMAC-SHA256(secret, window))` with
//! `window = floor(now / rotation_secs)` as 8 big-endian bytes. Every server
//! holding the secret agrees on the nonce without sharing state; the atproto
//! profile requires rotation at most every 5 minutes and asks servers to keep
//! accepting recently stale nonces, so the neighbouring windows are accepted
//! too.

use std::fmt;

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Derives the DPoP nonce of any time window from one secret.
#[derive(Clone)]
pub struct NonceSource {
    secret: [u8; 32],
    rotation_secs: i64,
}

impl NonceSource {
    /// A source rotating every `rotation_secs` (values below 1 are taken as 1).
    pub fn new(secret: [u8; 32], rotation_secs: i64) -> NonceSource {
        NonceSource {
            secret,
            rotation_secs: rotation_secs.max(1),
        }
    }

    /// The nonce to hand out at `now` (unix seconds), e.g. in `DPoP-Nonce`.
    pub fn current(&self, now: i64) -> String {
        BASE64URL_NOPAD.encode(&self.tag(self.window(now)))
    }

    /// True for the nonce of the previous, current or next window.
    pub fn is_valid(&self, nonce: &str, now: i64) -> bool {
        let Ok(given) = BASE64URL_NOPAD.decode(nonce.as_bytes()) else {
            return false;
        };
        if given.len() != 32 {
            return false;
        }
        let window = self.window(now);
        let mut ok = subtle::Choice::from(0);
        for w in [window.saturating_sub(1), window, window.saturating_add(1)] {
            ok |= self.tag(w).as_slice().ct_eq(&given);
        }
        ok.into()
    }

    fn window(&self, now: i64) -> i64 {
        now.div_euclid(self.rotation_secs)
    }

    fn tag(&self, window: i64) -> [u8; 32] {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts any key length");
        mac.update(&window.to_be_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceSource")
            .field("rotation_secs", &self.rotation_secs)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn nonce_is_hmac_of_the_window() {
        let source = NonceSource::new([7; 32], 60);
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&[7; 32]).unwrap();
        mac.update(&(NOW / 60).to_be_bytes());
        let expected = BASE64URL_NOPAD.encode(&mac.finalize().into_bytes());
        assert_eq!(source.current(NOW), expected);
        assert_eq!(expected.len(), 43);
    }

    #[test]
    fn rotates_and_accepts_neighbours() {
        let source = NonceSource::new([1; 32], 60);
        let start = NOW - NOW.rem_euclid(60);
        let n0 = source.current(start);
        assert_eq!(source.current(start + 59), n0);
        let n1 = source.current(start + 60);
        assert_ne!(n0, n1);
        let n2 = source.current(start + 120);
        assert_ne!(n1, n2);
        // At window 1: windows 0, 1, 2 are good.
        let at = start + 60;
        assert!(source.is_valid(&n0, at));
        assert!(source.is_valid(&n1, at));
        assert!(source.is_valid(&n2, at));
        // Two windows away: stale.
        assert!(!source.is_valid(&n0, start + 120));
        assert!(!source.is_valid(&source.current(start + 180), at));
    }

    #[test]
    fn refuses_other_secrets_and_garbage() {
        let a = NonceSource::new([1; 32], 60);
        let b = NonceSource::new([2; 32], 60);
        assert!(!a.is_valid(&b.current(NOW), NOW));
        assert!(!a.is_valid("", NOW));
        assert!(!a.is_valid("not base64!", NOW));
        assert!(!a.is_valid(&a.current(NOW)[..42], NOW));
        let padded = format!("{}=", a.current(NOW));
        assert!(!a.is_valid(&padded, NOW));
    }

    #[test]
    fn odd_rotation_values_and_negative_time() {
        let source = NonceSource::new([3; 32], 0);
        assert_ne!(source.current(10), source.current(11));
        let source = NonceSource::new([3; 32], 300);
        assert!(source.is_valid(&source.current(-1), -1));
        assert!(!format!("{source:?}").contains("secret"));
    }
}
