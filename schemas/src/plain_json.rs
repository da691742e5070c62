//! Sessions and transactions read from JSON without serde, for the plain
//! shape the producer writes: the fast path of [`crate::decode_session`]
//! and [`crate::decode_transaction`], which ingest and the aggregator both
//! run on every event (2M sessions and 0.5M transactions in the default
//! shop).
//!
//! serde's derived reader took about 1.3 µs a session, more than three
//! times what serde_json takes merely to walk the same bytes
//! (`IgnoredAny`); most of the rest was matching each key through the
//! derived visitors, wrapping every value in an `Option` visitor and growing
//! vectors one element at a time. This reader walks the bytes once (about
//! 0.75 µs a session, validation and allocation included: `cargo run
//! --release -p ingest --example decode_rates`) and fills the same
//! [`RawSession`] or [`RawTransaction`] the derived code fills, so
//! validation runs unchanged.
//!
//! It answers `None` (and serde reads the record, as before) as soon as
//! anything is not plainly what it expects: an escape or control byte in a
//! string, an unknown or repeated key, `null`, a number that is not a plain
//! integer where an integer goes, a name (device, status, payment method)
//! it does not know, invalid UTF-8, anything after the object. So every
//! record it does read, serde would have read into the equal raw record;
//! the tests hold it to that over a whole generated shop, dirty records
//! included, over ingest's fuzzed records and over hand-made edge cases.
//! Numbers that are prices are converted by serde_json itself, so they are
//! the same `f64` to the bit.

use crate::types::{ConversionStatus, DeviceInfo, DeviceType, PaymentMethod};
use crate::validate::{RawCartItem, RawLineItem, RawSession, RawTransaction};

/// Reads `data` (a session object, the envelope's `data`) into a
/// [`RawSession`], or `None` when serde must read it.
pub(crate) fn session(data: &[u8]) -> Option<RawSession> {
    whole(data, Cursor::session)
}

/// Reads `data` (a transaction object) into a [`RawTransaction`], or `None`
/// when serde must read it.
pub(crate) fn transaction(data: &[u8]) -> Option<RawTransaction> {
    whole(data, Cursor::transaction)
}

/// Reads `data` with `read`, which must take all of it but whitespace.
fn whole<'a, T>(data: &'a [u8], read: impl FnOnce(&mut Cursor<'a>) -> Option<T>) -> Option<T> {
    // UTF-8 checked once for the whole object: strings are then slices of
    // it, cut at their (ASCII) quotes.
    let text = std::str::from_utf8(data).ok()?;
    let mut c = Cursor { text, i: 0 };
    let v = read(&mut c)?;
    c.ws();
    (c.i == data.len()).then_some(v)
}

/// Largest integer accepted here: 18 digits always fit an `i64`; longer
/// ones go to serde, which knows where `i64` ends.
const MAX_INT_DIGITS: usize = 18;

struct Cursor<'a> {
    /// The object.
    text: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    /// The object's bytes.
    fn b(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON whitespace (the four bytes JSON allows).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b().get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let b = *self.b().get(self.i)?;
        self.i += 1;
        Some(b)
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b().get(self.i).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// A string without escapes or control bytes, as UTF-8.
    fn str(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        let end = start + plain_len(self.b().get(start..)?);
        if self.b().get(end) != Some(&b'"') {
            return None;
        }
        self.i = end + 1;
        self.text.get(start..end)
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }

    /// A plain integer: an optional minus, then `0` (not after the minus)
    /// or digits not starting with `0`, followed by neither a fraction nor
    /// an exponent. At most [`MAX_INT_DIGITS`] digits, so it cannot
    /// overflow.
    fn int(&mut self) -> Option<i64> {
        self.ws();
        let negative = self.b().get(self.i) == Some(&b'-');
        let start = self.i + usize::from(negative);
        let digits = self
            .b()
            .get(start..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > MAX_INT_DIGITS {
            return None;
        }
        let text = self.b().get(start..start + digits)?;
        // Leading zeros are not JSON; `-0` serde_json reads as a float.
        if text.first() == Some(&b'0') && (digits > 1 || negative) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.b().get(start + digits) {
            return None;
        }
        let mut v: i64 = 0;
        for &d in text {
            v = v * 10 + i64::from(d - b'0');
        }
        self.i = start + digits;
        Some(if negative { -v } else { v })
    }

    /// A number as serde_json reads it into an `f64` (the same bits): its
    /// text is found here and converted by serde_json.
    fn float(&mut self) -> Option<f64> {
        self.ws();
        let len = self
            .b()
            .get(self.i..)?
            .iter()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        let v = serde_json::from_slice::<f64>(self.b().get(self.i..self.i + len)?).ok()?;
        self.i += len;
        Some(v)
    }

    /// Calls `field` for each key of an object (the cursor then at its
    /// value), which reads the value or answers `None`.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.expect(b':')?;
            field(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// Reads an array's elements with `element`.
    fn array<T>(&mut self, mut element: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(element(self)?);
            match self.next()? {
                b',' => {}
                b']' => return Some(out),
                _ => return None,
            }
        }
    }

    fn session(&mut self) -> Option<RawSession> {
        let mut s = RawSession::default();
        self.object(|c, key| match key {
            "session_id" => once(&mut s.session_id, c.string()?),
            "user_id" => once(&mut s.user_id, c.string()?),
            "start_time" => once(&mut s.start_time, c.string()?),
            "duration_seconds" => once(&mut s.duration_seconds, c.int()?),
            "referrer" => once(&mut s.referrer, c.string()?),
            "device_info" => once(&mut s.device_info, c.device()?),
            "conversion_status" => {
                let status = match c.str()? {
                    "converted" => ConversionStatus::Converted,
                    "abandoned" => ConversionStatus::Abandoned,
                    "browsed" => ConversionStatus::Browsed,
                    _ => return None,
                };
                once(&mut s.conversion_status, status)
            }
            "viewed_products" => once(&mut s.viewed_products, c.array(Cursor::string)?),
            "cart_contents" => once(&mut s.cart_contents, c.array(Cursor::cart_item)?),
            _ => None,
        })?;
        Some(s)
    }

    /// `device_info`: every field is required, as in [`DeviceInfo`].
    fn device(&mut self) -> Option<DeviceInfo> {
        let (mut kind, mut os, mut browser, mut city, mut state, mut ip) =
            (None, None, None, None, None, None);
        self.object(|c, key| match key {
            "type" => {
                let t = match c.str()? {
                    "mobile" => DeviceType::Mobile,
                    "desktop" => DeviceType::Desktop,
                    "tablet" => DeviceType::Tablet,
                    "unknown" => DeviceType::Unknown,
                    _ => return None,
                };
                once(&mut kind, t)
            }
            "os" => once(&mut os, c.string()?),
            "browser" => once(&mut browser, c.string()?),
            "city" => once(&mut city, c.string()?),
            "state" => once(&mut state, c.string()?),
            "ip" => once(&mut ip, c.string()?),
            _ => None,
        })?;
        Some(DeviceInfo {
            device_type: kind?,
            os: os?,
            browser: browser?,
            city: city?,
            state: state?,
            ip: ip?,
        })
    }

    fn transaction(&mut self) -> Option<RawTransaction> {
        let mut t = RawTransaction::default();
        self.object(|c, key| match key {
            "transaction_id" => once(&mut t.transaction_id, c.string()?),
            "session_id" => once(&mut t.session_id, c.string()?),
            "user_id" => once(&mut t.user_id, c.string()?),
            "timestamp" => once(&mut t.timestamp, c.string()?),
            "items" => once(&mut t.items, c.array(Cursor::line_item)?),
            "discount" => once(&mut t.discount, c.float()?),
            "total" => once(&mut t.total, c.float()?),
            "payment_method" => {
                let method = match c.str()? {
                    "credit_card" => PaymentMethod::CreditCard,
                    "debit_card" => PaymentMethod::DebitCard,
                    "paypal" => PaymentMethod::Paypal,
                    "mobile_wallet" => PaymentMethod::MobileWallet,
                    "bank_transfer" => PaymentMethod::BankTransfer,
                    "unknown" => PaymentMethod::Unknown,
                    _ => return None,
                };
                once(&mut t.payment_method, method)
            }
            _ => None,
        })?;
        Some(t)
    }

    fn line_item(&mut self) -> Option<RawLineItem> {
        let mut it = RawLineItem::default();
        self.object(|c, key| match key {
            "product_id" => once(&mut it.product_id, c.string()?),
            "quantity" => once(&mut it.quantity, c.int()?),
            "unit_price" => once(&mut it.unit_price, c.float()?),
            "subtotal" => once(&mut it.subtotal, c.float()?),
            _ => None,
        })?;
        Some(it)
    }

    fn cart_item(&mut self) -> Option<RawCartItem> {
        let mut it = RawCartItem::default();
        self.object(|c, key| match key {
            "product_id" => once(&mut it.product_id, c.string()?),
            "quantity" => once(&mut it.quantity, c.int()?),
            "price" => once(&mut it.price, c.float()?),
            _ => None,
        })?;
        Some(it)
    }
}

/// How many bytes of `b` come before its first quote, backslash or control
/// byte (all of `b` if none), eight bytes at a time as serde_json looks for
/// the end of a string. In a word, `(v - 0x01..) & !v & 0x80..` marks the
/// bytes of `v` that are zero, exactly up to the first one (a borrow can
/// only mark bytes above it), and `(x - 0x20..) & !x & 0x80..` the bytes
/// below 0x20 in the same way: the lowest mark of the three is the answer.
fn plain_len(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let marks = |x: u64| {
        (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
    };
    let at = |i: usize, m: u64| i + (m.trailing_zeros() / 8) as usize;
    let mut i = 0;
    while let Some(Ok(word)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let m = marks(u64::from_le_bytes(word));
        if m != 0 {
            return at(i, m);
        }
        i += 8;
    }
    // The last few bytes, padded with quotes.
    let rest = b.get(i..).unwrap_or_default();
    let mut word = [b'"'; 8];
    for (w, &r) in word.iter_mut().zip(rest) {
        *w = r;
    }
    at(i, marks(u64::from_le_bytes(word)))
}

/// Sets a field read for the first time; a repeated key is serde's to
/// judge.
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde's derived reader makes of `data`.
    fn serde(data: &str) -> Option<RawSession> {
        serde_json::from_str(data).ok()
    }

    /// Reads `data` both ways: the fast reader must agree with serde
    /// whenever it answers; returns whether it did.
    fn agrees(data: &str) -> bool {
        let fast = session(data.as_bytes());
        if fast.is_some() {
            assert_eq!(fast, serde(data), "{data}");
        }
        fast.is_some()
    }

    const PLAIN: &str = r#"{"session_id":"sess_11b9e767f28a","user_id":"user_005983","start_time":"2025-01-01T00:01:18","duration_seconds":530,"referrer":"google","device_info":{"type":"tablet","os":"Android","browser":"Chrome","city":"Port Delfina","state":"Oklahoma","ip":"52.151.217.220"},"conversion_status":"abandoned","viewed_products":["prod_04982","prod_02609"],"cart_contents":[{"product_id":"prod_04982","quantity":1,"price":157.99},{"product_id":"prod_02267","quantity":2,"price":13.99}]}"#;

    #[test]
    fn plain_len_stops_at_the_first_quote_backslash_or_control_byte() {
        for (text, want) in [
            (&b""[..], 0),
            (b"abc", 3),
            (b"0123456789abcdef", 16),
            (b"0123456789abcdef\"", 16),
            (b"01234567\"9", 8),
            (b"0123456\"89", 7),
            (b"0123456789\\x", 10),
            (b"0123456789\x1f", 10),
            (b"\x7f\xc3\xa9 \x20~!#$%&'()*+,-./\"", 20),
            (b"\"", 0),
            (b"\n01234567", 0),
        ] {
            assert_eq!(plain_len(text), want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn the_producers_shape_is_read_field_by_field() {
        let s = session(PLAIN.as_bytes()).expect("plain session");
        assert_eq!(s.session_id.as_deref(), Some("sess_11b9e767f28a"));
        assert_eq!(s.user_id.as_deref(), Some("user_005983"));
        assert_eq!(s.start_time.as_deref(), Some("2025-01-01T00:01:18"));
        assert_eq!(s.duration_seconds, Some(530));
        assert_eq!(s.referrer.as_deref(), Some("google"));
        let d = s.device_info.as_ref().expect("device");
        assert_eq!(d.device_type, DeviceType::Tablet);
        assert_eq!(
            (&*d.os, &*d.browser, &*d.city, &*d.state, &*d.ip),
            (
                "Android",
                "Chrome",
                "Port Delfina",
                "Oklahoma",
                "52.151.217.220"
            )
        );
        assert_eq!(s.conversion_status, Some(ConversionStatus::Abandoned));
        assert_eq!(
            s.viewed_products,
            Some(vec!["prod_04982".to_string(), "prod_02609".to_string()])
        );
        let cart = s.cart_contents.as_ref().expect("cart");
        assert_eq!(cart.len(), 2);
        assert_eq!(cart[1].product_id.as_deref(), Some("prod_02267"));
        assert_eq!(cart[1].quantity, Some(2));
        assert_eq!(cart[1].price.map(f64::to_bits), Some(13.99f64.to_bits()));
        assert_eq!(Some(s), serde(PLAIN));
    }

    #[test]
    fn plain_records_are_read_as_serde_reads_them() {
        for data in [
            PLAIN,
            "{}",
            " { } ",
            "{\n  \"user_id\" : \"user_000001\" ,\r\n\t\"viewed_products\" : [ ]\n}\n",
            r#"{"cart_contents":[{}],"viewed_products":["a"]}"#,
            r#"{"cart_contents":[{"price":5}]}"#,
            r#"{"cart_contents":[{"price":-0.0}]}"#,
            r#"{"cart_contents":[{"price":1.5e2}]}"#,
            r#"{"cart_contents":[{"price":0.1,"quantity":-3}]}"#,
            r#"{"cart_contents":[{"price":123456789.123456789}]}"#,
            r#"{"duration_seconds":0}"#,
            r#"{"duration_seconds":-86400}"#,
            r#"{"duration_seconds":999999999999999999}"#,
            r#"{"user_id":"","session_id":"   "}"#,
            "{\"referrer\":\"caf\u{e9} \u{1f600}\"}",
            r#"{"conversion_status":"browsed"}"#,
        ] {
            assert!(agrees(data), "{data}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for data in [
            // Escapes, control bytes.
            r#"{"referrer":"a\"b"}"#,
            r#"{"referrer":"caf\u00e9"}"#,
            "{\"referrer\":\"a\u{1}b\"}",
            r#"{"user\u005fid":"user_000001"}"#,
            // Keys: unknown, repeated.
            r#"{"colour":"red"}"#,
            r#"{"user_id":"a","user_id":"b"}"#,
            r#"{"device_info":{"type":"mobile","os":"a","browser":"b","city":"c","state":"d","ip":"e","x":1}}"#,
            // null, wrong types.
            r#"{"referrer":null}"#,
            r#"{"duration_seconds":"530"}"#,
            r#"{"duration_seconds":530.0}"#,
            r#"{"duration_seconds":5e2}"#,
            r#"{"duration_seconds":0530}"#,
            r#"{"duration_seconds":1234567890123456789}"#,
            r#"{"duration_seconds":-}"#,
            r#"{"duration_seconds":-0}"#,
            r#"{"cart_contents":[{"price":"1.5"}]}"#,
            r#"{"cart_contents":[{"quantity":1.0}]}"#,
            r#"{"viewed_products":"prod_00001"}"#,
            r#"{"viewed_products":[1]}"#,
            // Names it does not know; an incomplete device.
            r#"{"conversion_status":"Converted"}"#,
            r#"{"device_info":{"type":"watch","os":"a","browser":"b","city":"c","state":"d","ip":"e"}}"#,
            r#"{"device_info":{"type":"mobile","os":"a","browser":"b","city":"c","state":"d"}}"#,
            // Not one plain object.
            "[]",
            r#"{"user_id":"a",}"#,
            r#"{"user_id":"a"} x"#,
            r#"{"user_id":"a""#,
            r#"{"viewed_products":["a",]}"#,
            "",
        ] {
            assert!(!agrees(data), "{data}");
        }
        // Not UTF-8.
        assert_eq!(session(b"{\"referrer\":\"\xff\"}"), None);
    }

    #[test]
    fn sessions_the_envelope_encodes_take_the_fast_path_unless_escaped() {
        use crate::envelope::{decode_session, encode, Kind};
        let data = |bytes: &[u8]| -> String {
            let start = r#"{"v":1,"kind":"session","data":"#.len();
            String::from_utf8(bytes[start..bytes.len() - 1].to_vec()).expect("utf-8")
        };
        let mut s = crate::envelope::tests::seed_session();
        for status in [
            ConversionStatus::Converted,
            ConversionStatus::Abandoned,
            ConversionStatus::Browsed,
        ] {
            s.conversion_status = status;
            if status == ConversionStatus::Browsed {
                s.cart_contents.clear();
            }
            for (city, fast) in [("Saint-\u{c9}tienne", true), ("\"Loire\"", false)] {
                s.device_info.city = city.into();
                let bytes = encode(Kind::Session, &s);
                assert_eq!(agrees(&data(&bytes)), fast, "{city}");
                assert_eq!(decode_session(&bytes), Ok(s.clone()));
            }
        }
    }

    const PLAIN_TXN: &str = r#"{"transaction_id":"txn_c8d9e7f3a2b1","session_id":"sess_00000000002a","user_id":"user_000042","timestamp":"2025-03-12T14:52:41","items":[{"product_id":"prod_00123","quantity":2,"unit_price":129.99,"subtotal":259.98}],"discount":25.99,"total":233.99,"payment_method":"credit_card"}"#;

    fn transaction_agrees(data: &str) -> bool {
        let fast = transaction(data.as_bytes());
        if fast.is_some() {
            assert_eq!(fast, serde_json::from_str(data).ok(), "{data}");
        }
        fast.is_some()
    }

    #[test]
    fn a_plain_transaction_is_read_field_by_field() {
        let t = transaction(PLAIN_TXN.as_bytes()).expect("plain transaction");
        assert_eq!(t.transaction_id.as_deref(), Some("txn_c8d9e7f3a2b1"));
        assert_eq!(t.session_id.as_deref(), Some("sess_00000000002a"));
        assert_eq!(t.user_id.as_deref(), Some("user_000042"));
        assert_eq!(t.timestamp.as_deref(), Some("2025-03-12T14:52:41"));
        let items = t.items.as_ref().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].product_id.as_deref(), Some("prod_00123"));
        assert_eq!(items[0].quantity, Some(2));
        assert_eq!(
            items[0].unit_price.map(f64::to_bits),
            Some(129.99f64.to_bits())
        );
        assert_eq!(
            items[0].subtotal.map(f64::to_bits),
            Some(259.98f64.to_bits())
        );
        assert_eq!(t.discount.map(f64::to_bits), Some(25.99f64.to_bits()));
        assert_eq!(t.total.map(f64::to_bits), Some(233.99f64.to_bits()));
        assert_eq!(t.payment_method, Some(PaymentMethod::CreditCard));
        assert!(transaction_agrees(PLAIN_TXN));
        for (data, fast) in [
            (r#"{"items":[],"total":0}"#, true),
            (r#"{"items":[{}],"discount":1e1}"#, true),
            (r#"{"payment_method":"cash"}"#, false),
            (r#"{"payment_method":"Paypal"}"#, false),
            (r#"{"items":[{"quantity":"2"}]}"#, false),
            (r#"{"items":[{"colour":1}]}"#, false),
            (r#"{"total":233.99,"total":1}"#, false),
        ] {
            assert_eq!(transaction_agrees(data), fast, "{data}");
        }
    }

    /// The names read here are serde's names of the same variants.
    #[test]
    fn every_variant_is_named_as_serde_names_it() {
        for d in DeviceType::EVERY {
            let data = format!(
                r#"{{"device_info":{{"type":{},"os":"","browser":"","city":"","state":"","ip":""}}}}"#,
                serde_json::to_string(&d).expect("a plain enum")
            );
            let s = session(data.as_bytes()).expect("device type");
            assert_eq!(s.device_info.map(|i| i.device_type), Some(d));
        }
        for c in [
            ConversionStatus::Converted,
            ConversionStatus::Abandoned,
            ConversionStatus::Browsed,
        ] {
            let data = format!(
                r#"{{"conversion_status":{}}}"#,
                serde_json::to_string(&c).expect("a plain enum")
            );
            assert_eq!(
                session(data.as_bytes()).and_then(|s| s.conversion_status),
                Some(c)
            );
        }
        for m in [
            PaymentMethod::CreditCard,
            PaymentMethod::DebitCard,
            PaymentMethod::Paypal,
            PaymentMethod::MobileWallet,
            PaymentMethod::BankTransfer,
        ] {
            let data = format!(
                r#"{{"payment_method":{}}}"#,
                serde_json::to_string(&m).expect("a plain enum")
            );
            assert_eq!(
                transaction(data.as_bytes()).and_then(|t| t.payment_method),
                Some(m)
            );
        }
    }
}
