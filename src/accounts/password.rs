//! Password hashing: scrypt with the reference PDS's parameters and storage format, so an
//! operator can bring a reference server's accounts over with their passwords.
//!
//! Stored as `<salt hex>:<hash hex>`: 16 random salt bytes, N=16384 r=8 p=1, a 64-byte key, and
//! (as the reference does) the salt's hex text, not its bytes, as the scrypt salt input.

use data_encoding::HEXLOWER;

const LOG_N: u8 = 14;
const R: u32 = 8;
const P: u32 = 1;
const KEY_LEN: usize = 64;

/// scrypt takes 16 MiB and tens of milliseconds per call, and log-in attempts need no account:
/// at most this many run at once, the rest wait (on their blocking threads, holding no memory).
const MAX_CONCURRENT: usize = 2;

struct Permits {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

static PERMITS: Permits = Permits {
    free: std::sync::Mutex::new(MAX_CONCURRENT),
    freed: std::sync::Condvar::new(),
};

fn with_permit<T>(f: impl FnOnce() -> T) -> T {
    {
        let mut free = PERMITS.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = PERMITS.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
    }
    let out = f();
    *PERMITS.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    PERMITS.freed.notify_one();
    out
}

fn derive(password: &str, salt_hex: &str) -> [u8; KEY_LEN] {
    with_permit(|| derive_now(password, salt_hex))
}

fn derive_now(password: &str, salt_hex: &str) -> [u8; KEY_LEN] {
    let params = scrypt::Params::new(LOG_N, R, P).expect("constant scrypt parameters are valid");
    let mut out = [0u8; KEY_LEN];
    scrypt::scrypt(password.as_bytes(), salt_hex.as_bytes(), &params, &mut out)
        .expect("64 bytes is a valid length");
    out
}

/// Hashes a new password. Costs about 50 ms and 16 MiB: call it on a blocking thread.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS has randomness");
    hash_with_salt(password, &HEXLOWER.encode(&salt))
}

/// Hashes with a salt the caller chose (hex text), in the same stored form. App passwords use
/// one derived from the DID, as the reference does, so a login computes one hash to compare
/// with all of an account's app passwords (see `app_passwords::find`).
pub fn hash_with_salt(password: &str, salt_hex: &str) -> String {
    let key = derive(password, salt_hex);
    format!("{salt_hex}:{}", HEXLOWER.encode(&key))
}

/// Checks a password against a stored hash, in constant time over the key.
pub fn verify(password: &str, stored: &str) -> bool {
    let Some((salt_hex, key_hex)) = stored.split_once(':') else {
        return false;
    };
    let Ok(expected) = HEXLOWER.decode(key_hex.as_bytes()) else {
        return false;
    };
    if expected.len() != KEY_LEN {
        return false;
    }
    let key = derive(password, salt_hex);
    key.iter()
        .zip(&expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let stored = hash("correct horse");
        assert!(verify("correct horse", &stored));
        assert!(!verify("correct horsE", &stored));
        assert!(!verify("correct horse", "nonsense"));
        assert!(!verify("correct horse", "00:11"));
        // Two hashes of one password differ (fresh salt).
        assert_ne!(stored, hash("correct horse"));
    }
}
