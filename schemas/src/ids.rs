//! Id formats, as in the seed report: `user_000042`, `prod_00123`,
//! `cat_007`, `txn_c8d9e7f3a2b1`, `sess_…`.

/// `user_000042` for user number 42.
pub fn user_id(n: u32) -> String {
    format!("user_{n:06}")
}

/// `prod_00123` for product number 123.
pub fn product_id(n: u32) -> String {
    format!("prod_{n:05}")
}

/// `cat_007` for category number 7.
pub fn category_id(n: u32) -> String {
    format!("cat_{n:03}")
}

/// `sess_` and 12 lowercase hex digits.
pub fn session_id(code: u64) -> String {
    format!("sess_{:012x}", code & 0xffff_ffff_ffff)
}

/// `txn_` and 12 lowercase hex digits.
pub fn transaction_id(code: u64) -> String {
    format!("txn_{:012x}", code & 0xffff_ffff_ffff)
}

/// The number in `s` if `s` is exactly how that number is written: the
/// prefix, then `min_digits` digits, or more without a leading zero
/// (`prod_000123` is not product 123: two spellings never name one id).
fn parse_numbered(s: &str, prefix: &str, min_digits: usize) -> Option<u32> {
    let digits = s.strip_prefix(prefix)?.as_bytes();
    let exact = digits.len() == min_digits || (digits.len() > min_digits && digits[0] != b'0');
    if !exact || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // One pass over at most 10 digits (no overflow in a u64): the live
    // window reads every product id of every event through here.
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    u32::try_from(n).ok()
}

/// The number in a well-formed user id, or `None` if it is malformed.
pub fn parse_user_id(s: &str) -> Option<u32> {
    parse_numbered(s, "user_", 6)
}

/// The number in a well-formed product id, or `None` if it is malformed.
pub fn parse_product_id(s: &str) -> Option<u32> {
    parse_numbered(s, "prod_", 5)
}

/// The number in a well-formed category id, or `None` if it is malformed.
pub fn parse_category_id(s: &str) -> Option<u32> {
    parse_numbered(s, "cat_", 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_seed() {
        assert_eq!(user_id(42), "user_000042");
        assert_eq!(product_id(123), "prod_00123");
        assert_eq!(category_id(7), "cat_007");
        assert_eq!(transaction_id(0xc8d9e7f3a2b1), "txn_c8d9e7f3a2b1");
        assert_eq!(session_id(0x1), "sess_000000000001");
    }

    #[test]
    fn parsers_round_trip_and_refuse_garbage() {
        assert_eq!(parse_user_id(&user_id(42)), Some(42));
        assert_eq!(parse_product_id(&product_id(4999)), Some(4999));
        assert_eq!(parse_category_id("cat_024"), Some(24));
        assert_eq!(parse_user_id("user_42"), None);
        assert_eq!(parse_user_id("user_00004x"), None);
        assert_eq!(parse_product_id("user_000042"), None);
        assert_eq!(parse_product_id(""), None);
        assert_eq!(parse_product_id("prod_000123"), None);
        assert_eq!(parse_product_id("prod_123456"), Some(123_456));
    }
}
