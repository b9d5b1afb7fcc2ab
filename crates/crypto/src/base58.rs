//! base58btc (the Bitcoin alphabet), as used by multibase prefix `z`.
//!
//! The conversion is quadratic in the input length; callers bound the
//! length of untrusted input before decoding (keys are ~50 characters).

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Maps an ASCII byte to its base58 digit, or 0xff when it is not in the alphabet.
const DECODE: [u8; 128] = {
    let mut table = [0xffu8; 128];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Encodes bytes as base58btc (no multibase prefix).
pub(crate) fn encode(input: &[u8]) -> String {
    let zeros = input.iter().take_while(|&&b| b == 0).count();
    // Little-endian base-58 digits of the non-zero-prefixed part.
    let mut digits: Vec<u8> = Vec::with_capacity(input.len() * 138 / 100 + 1);
    for &byte in &input[zeros..] {
        let mut carry = u32::from(byte);
        for digit in digits.iter_mut() {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(ALPHABET[usize::from(d)])),
    );
    out
}

/// Decodes base58btc (no multibase prefix). `None` on any character outside
/// the alphabet.
pub(crate) fn decode(input: &str) -> Option<Vec<u8>> {
    let input = input.as_bytes();
    let ones = input.iter().take_while(|&&c| c == b'1').count();
    // Little-endian base-256 bytes of the value.
    let mut bytes: Vec<u8> = Vec::with_capacity(input.len() * 733 / 1000 + 1);
    for &c in &input[ones..] {
        let value = *DECODE.get(usize::from(c))?;
        if value == 0xff {
            return None;
        }
        let mut carry = u32::from(value);
        for byte in bytes.iter_mut() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; ones];
    out.extend(bytes.iter().rev());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Values from the base58 draft specification's examples.
        assert_eq!(encode(b"Hello World!"), "2NEpo7TZRRrLZSi2U");
        assert_eq!(
            encode(b"The quick brown fox jumps over the lazy dog."),
            "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"
        );
        assert_eq!(encode(&[0, 0, 0x28, 0x7f, 0xb4, 0xcd]), "11233QC4");
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0]), "1");
    }

    #[test]
    fn round_trip() {
        let cases: [&[u8]; 6] = [
            &[],
            &[0],
            &[0, 0, 1],
            &[255; 40],
            &[0, 255, 0, 1, 2, 3],
            b"did:key is base58btc",
        ];
        for case in cases {
            assert_eq!(decode(&encode(case)).as_deref(), Some(case));
        }
    }

    #[test]
    fn rejects_bad_characters() {
        for bad in ["0", "O", "I", "l", "abc+", "é", " 2"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
