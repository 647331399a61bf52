//! Identifiers built from randomness the shell supplies (the core has no RNG).

/// Format 16 random bytes as a UUID v4 string (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    dashed(&b)
}

/// A UUID v7 (RFC 9562 §5.7): the first 48 bits are `unix_ms`, the rest (74 bits) random. Keys
/// built from it sort by creation time, so a store indexed by them appends at the end of its
/// b-tree instead of touching a random page per insert (issue 17: one-off API sessions).
pub fn uuid_v7(unix_ms: u64, mut b: [u8; 16]) -> String {
    b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    dashed(&b)
}

/// 16 bytes in the UUID text form (`8-4-4-4-12` hex digits).
fn dashed(b: &[u8; 16]) -> String {
    let h = hex(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Lower-case hex of arbitrary bytes (generated tokens).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_shape() {
        let u = super::uuid_v4([0xff; 16]);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn uuid_v7_sorts_by_time_and_keeps_the_random_tail() {
        let a = super::uuid_v7(1_765_000_000_000, [0xff; 16]);
        let b = super::uuid_v7(1_765_000_000_001, [0x00; 16]);
        assert!(a < b, "{a} {b}");
        assert_eq!((a.len(), &a[14..15]), (36, "7"));
        assert_eq!(&a[24..], "ffffffffffff");
        assert_eq!(u64::from_str_radix(&a[..8], 16).unwrap() << 16 | u64::from_str_radix(&a[9..13], 16).unwrap(), 1_765_000_000_000);
    }
}
