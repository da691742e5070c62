//! The event envelope: `{"v":1,"kind":"session","data":{…}}`.
//!
//! The version lets a consumer refuse what it cannot read instead of
//! misreading it; the kind lets one topic (the catalog) carry several record
//! kinds. Decoding never panics: any input gives a record or a [`Rejection`].

use crate::types::{Category, Product, Session, Transaction, User};
use crate::validate::{self, Rejection};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

pub use crate::validate::MAX_RECORD_BYTES;

/// The most of a refused record's bytes a [`DeadLetter`] carries; the rest
/// is cut and the cut is said in the payload.
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 64 << 10;

/// [`SCHEMA_VERSION`] as [`wrap`] writes it.
const SCHEMA_VERSION_TEXT: &str = "1";

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A [`Session`].
    Session,
    /// A [`Transaction`].
    Transaction,
    /// A [`User`].
    User,
    /// A [`Product`].
    Product,
    /// A [`Category`].
    Category,
}

impl Kind {
    /// The name written in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Transaction => "transaction",
            Kind::User => "user",
            Kind::Product => "product",
            Kind::Category => "category",
        }
    }
}

/// Wraps an already-serialised record (`data`, JSON text) in an envelope.
///
/// Takes bytes rather than a value so that deliberately broken records
/// (the generator's dirty share) travel exactly as broken as they are.
pub fn wrap(kind: Kind, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(br#"{"v":"#);
    out.extend_from_slice(SCHEMA_VERSION_TEXT.as_bytes());
    out.extend_from_slice(br#","kind":""#);
    out.extend_from_slice(kind.as_str().as_bytes());
    out.extend_from_slice(br#"","data":"#);
    out.extend_from_slice(data);
    out.push(b'}');
    out
}

/// Serialises a record and wraps it in an envelope.
pub fn encode<T: Serialize>(kind: Kind, record: &T) -> Vec<u8> {
    // Serialising our own plain structs to a Vec cannot fail: no maps with
    // non-string keys, no I/O.
    let data = serde_json::to_vec(record).unwrap_or_default();
    wrap(kind, &data)
}

#[derive(Deserialize)]
struct Header<'a> {
    v: Option<serde_json::Value>,
    kind: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Opens an envelope: checks version and kind, returns the kind and data.
fn open(bytes: &[u8]) -> Result<(String, &RawValue), Rejection> {
    let header: Header<'_> = serde_json::from_slice(bytes).map_err(|e| Rejection::from_json(&e))?;
    match header.v {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(SCHEMA_VERSION) => {}
        Some(serde_json::Value::Number(n)) => {
            return Err(Rejection::UnsupportedVersion(
                n.as_u64().unwrap_or(u64::MAX),
            ))
        }
        Some(other) => return Err(Rejection::WrongType(format!("schema version {other}"))),
        None => return Err(Rejection::MissingField("v")),
    }
    let kind = header.kind.ok_or(Rejection::MissingField("kind"))?;
    let data = header.data.ok_or(Rejection::MissingField("data"))?;
    Ok((kind, data))
}

/// The data of an envelope laid out exactly as [`wrap`] writes it
/// (`{"v":1,"kind":"session","data":` ... `}`), found without reading it;
/// `None` for any other layout.
fn wrapped_data(bytes: &[u8], expected: Kind) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(br#"{"v":"#)?;
    let rest = rest.strip_prefix(SCHEMA_VERSION_TEXT.as_bytes())?;
    let rest = rest.strip_prefix(br#","kind":""#)?;
    let rest = rest.strip_prefix(expected.as_str().as_bytes())?;
    let rest = rest.strip_prefix(br#"","data":"#)?;
    rest.strip_suffix(b"}")
}

/// Decodes the record of an envelope of kind `expected`. Our own envelopes
/// are read in one pass ([`wrapped_data`], then the data); when that fails
/// for any reason, the envelope is read the general way (header, then
/// data), which gives the rejection. Both ways give the same record: data
/// that parses on its own makes the envelope valid JSON with exactly the
/// keys `v`, `kind` and `data`.
fn decode_record<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    expected: Kind,
) -> Result<T, Rejection> {
    check_size(bytes)?;
    check_nesting(bytes)?;
    if let Some(record) = wrapped_data(bytes, expected).and_then(|d| serde_json::from_slice(d).ok())
    {
        return Ok(record);
    }
    parse(open_kind(bytes, expected)?)
}

fn check_size(bytes: &[u8]) -> Result<(), Rejection> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(Rejection::Oversized(bytes.len()));
    }
    Ok(())
}

/// The deepest nesting of arrays and objects a record may have, the
/// envelope included (serde_json's own recursion limit).
pub const MAX_NESTING: usize = 128;

/// Refuses a record nested deeper than [`MAX_NESTING`] as `invalid_json`.
/// serde_json enforces that limit only on what it builds: a value it skips
/// (an unknown key) or keeps raw (the envelope's `data`) may be nested
/// without bound. The fast readers need no check: they take only the
/// known keys, nested a few levels. A walk of the bytes, once, only for
/// records that take serde's path.
fn check_nesting(bytes: &[u8]) -> Result<(), Rejection> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Rejection::InvalidJson(format!(
                        "nested more than {MAX_NESTING} levels deep"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn open_kind(bytes: &[u8], expected: Kind) -> Result<&RawValue, Rejection> {
    let (kind, data) = open(bytes)?;
    if kind != expected.as_str() {
        return Err(Rejection::WrongKind {
            expected: expected.as_str(),
            found: kind,
        });
    }
    Ok(data)
}

fn parse<'a, T: Deserialize<'a>>(data: &'a RawValue) -> Result<T, Rejection> {
    serde_json::from_str(data.get()).map_err(|e| Rejection::from_json(&e))
}

/// Decodes and validates a session event.
pub fn decode_session(bytes: &[u8]) -> Result<Session, Rejection> {
    decode_plain(
        bytes,
        Kind::Session,
        crate::plain_json::session,
        validate::session,
    )
}

/// [`decode_session`] without its fast path (module `plain_json`):
/// serde's derived reader alone. The two give the same answer for every
/// input (`ingest`'s fuzz test and the generator's tests hold them to it);
/// this one is kept to check that.
#[doc(hidden)]
pub fn decode_session_serde(bytes: &[u8]) -> Result<Session, Rejection> {
    validate::session(decode_record(bytes, Kind::Session)?)
}

/// Decodes and validates a transaction event.
pub fn decode_transaction(bytes: &[u8]) -> Result<Transaction, Rejection> {
    decode_plain(
        bytes,
        Kind::Transaction,
        crate::plain_json::transaction,
        validate::transaction,
    )
}

/// Decodes a record of `kind` with `plain` (the plain-JSON reader) when it
/// reads the record, else with serde, and validates it.
fn decode_plain<R: serde::de::DeserializeOwned, T>(
    bytes: &[u8],
    kind: Kind,
    plain: fn(&[u8]) -> Option<R>,
    validate: fn(R) -> Result<T, Rejection>,
) -> Result<T, Rejection> {
    check_size(bytes)?;
    if let Some(raw) = wrapped_data(bytes, kind).and_then(plain) {
        return validate(raw);
    }
    validate(decode_record(bytes, kind)?)
}

/// [`decode_transaction`] without its fast path, as
/// [`decode_session_serde`] is to [`decode_session`].
#[doc(hidden)]
pub fn decode_transaction_serde(bytes: &[u8]) -> Result<Transaction, Rejection> {
    validate::transaction(decode_record(bytes, Kind::Transaction)?)
}

/// A record from the catalog topic.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogRecord {
    /// A category.
    Category(Category),
    /// A product.
    Product(Product),
    /// A user.
    User(User),
}

/// Decodes and validates a catalog event (category, product or user).
pub fn decode_catalog(bytes: &[u8]) -> Result<CatalogRecord, Rejection> {
    check_size(bytes)?;
    check_nesting(bytes)?;
    let (kind, data) = open(bytes)?;
    match kind.as_str() {
        "category" => validate::category(parse(data)?).map(CatalogRecord::Category),
        "product" => validate::product(parse(data)?).map(CatalogRecord::Product),
        "user" => validate::user(parse(data)?).map(CatalogRecord::User),
        _ => Err(Rejection::WrongKind {
            expected: "category, product or user",
            found: kind,
        }),
    }
}

/// A refused record's bytes as dead-letter text: lossy UTF-8, at most
/// [`MAX_DEAD_LETTER_PAYLOAD`] bytes of it, then a note of what was cut.
fn payload_text(payload: &[u8]) -> String {
    if payload.len() <= MAX_DEAD_LETTER_PAYLOAD {
        return String::from_utf8_lossy(payload).into_owned();
    }
    let mut text = String::from_utf8_lossy(&payload[..MAX_DEAD_LETTER_PAYLOAD]).into_owned();
    text.push_str(&format!(
        "... [cut: {} of {} bytes shown]",
        MAX_DEAD_LETTER_PAYLOAD,
        payload.len()
    ));
    text
}

/// A record that could not be used, as published on the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Topic the record came from.
    pub source_topic: String,
    /// Partition it came from.
    pub partition: u32,
    /// Offset it had there.
    pub offset: u64,
    /// Stable reason code ([`Rejection::code`]).
    pub reason_code: String,
    /// Human-readable reason.
    pub reason: String,
    /// The record as received (lossy UTF-8; a record over
    /// [`MAX_DEAD_LETTER_PAYLOAD`] bytes is cut there, and says so).
    pub payload: String,
}

impl DeadLetter {
    /// The dead letter for the record at `topic`/`partition`/`offset`.
    pub fn new(
        topic: &str,
        partition: u32,
        offset: u64,
        reason: &Rejection,
        payload: &[u8],
    ) -> Self {
        DeadLetter {
            source_topic: topic.to_string(),
            partition,
            offset,
            reason_code: reason.code().to_string(),
            reason: reason.to_string(),
            payload: payload_text(payload),
        }
    }

    /// The dead letter as published (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A plain struct of strings and numbers: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {

    /// Catalog records go through serde_json, which parses floats exactly
    /// only with its `float_roundtrip` feature: without it, a price of
    /// 1.15e101 came back as 1.1499999999999999e101 (found by the fuzz
    /// test's round trip).
    #[test]
    fn catalog_floats_round_trip_exactly() {
        for x in [1.15e101_f64, 2.5e-300, 123_456.789, 0.1, f64::MAX, 5e-324] {
            let text = serde_json::to_string(&x).expect("finite");
            let back: f64 = serde_json::from_str(&text).expect("parse");
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e} written as {text}");
        }
    }

    use super::*;
    use crate::types::*;
    use chrono::NaiveDateTime;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::time::CANONICAL).expect("test literal")
    }

    /// The seed's example transaction, with its discount made explicit:
    /// 2 x 129.99 = 259.98, minus 25.99 = 233.99.
    fn seed_transaction() -> Transaction {
        Transaction {
            transaction_id: "txn_c8d9e7f3a2b1".into(),
            session_id: "sess_00000000002a".into(),
            user_id: "user_000042".into(),
            timestamp: ts("2025-03-12T14:52:41"),
            items: vec![LineItem {
                product_id: "prod_00123".into(),
                quantity: 2,
                unit_price: 129.99,
                subtotal: 259.98,
            }],
            discount: 25.99,
            total: 233.99,
            payment_method: PaymentMethod::CreditCard,
        }
    }

    /// A valid transaction envelope with an extra key `x` holding `extra`.
    fn with_extra(extra: &str) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_slice(&encode(Kind::Transaction, &seed_transaction())).expect("json");
        v["data"]["x"] = serde_json::Value::Null;
        let text = v
            .to_string()
            .replace("\"x\":null", &format!("\"x\":{extra}"));
        text.into_bytes()
    }

    /// Nesting past 128 levels, the envelope included, is `invalid_json`
    /// wherever it is, an ignored key included (serde_json skips those
    /// without its recursion limit); brackets inside strings do not count.
    #[test]
    fn nesting_past_128_levels_is_invalid_json() {
        let nested = |d: usize| "[".repeat(d) + &"]".repeat(d);
        // The envelope and `data` are two levels: 126 more is 128 in all.
        assert_eq!(
            decode_transaction(&with_extra(&nested(126))),
            Ok(seed_transaction())
        );
        for depth in [127, 400_000] {
            let bytes = with_extra(&nested(depth));
            if bytes.len() > MAX_RECORD_BYTES {
                assert_eq!(
                    decode_transaction(&bytes),
                    Err(Rejection::Oversized(bytes.len()))
                );
                continue;
            }
            match decode_transaction(&bytes) {
                Err(Rejection::InvalidJson(m)) => assert!(m.contains("128 levels"), "{m}"),
                other => panic!("depth {depth}: {other:?}"),
            }
            assert_eq!(
                decode_transaction_serde(&bytes).map_err(|r| r.code()),
                Err("invalid_json")
            );
        }
        // A deep object in an unknown key of a catalog record, too.
        let objects = |d: usize| "{\"a\":".repeat(d) + "1" + &"}".repeat(d);
        let user = String::from_utf8(encode(
            Kind::User,
            &serde_json::json!({"user_id": "user_000001", "name": "A", "email": "a@b.c",
                                "registration_date": "2025-01-01T00:00:00", "x": 0}),
        ))
        .expect("utf8");
        let deep_user = user.replace("\"x\":0", &format!("\"x\":{}", objects(200)));
        assert_eq!(
            decode_catalog(deep_user.as_bytes())
                .map(|_| ())
                .map_err(|r| r.code()),
            Err("invalid_json")
        );
        // 300 brackets inside a string are text, not nesting.
        let in_string = with_extra(&format!("\"{}\"", "[".repeat(300)));
        assert_eq!(decode_transaction(&in_string), Ok(seed_transaction()));
    }

    pub(crate) fn seed_session() -> Session {
        Session {
            session_id: "sess_00000000002a".into(),
            user_id: "user_000042".into(),
            start_time: ts("2025-03-12T14:40:00"),
            duration_seconds: 900,
            referrer: "google".into(),
            device_info: DeviceInfo {
                device_type: DeviceType::Desktop,
                os: "Windows".into(),
                browser: "Chrome".into(),
                city: "Kigali".into(),
                state: "Kigali".into(),
                ip: "41.186.0.7".into(),
            },
            conversion_status: ConversionStatus::Converted,
            viewed_products: vec!["prod_00123".into(), "prod_00456".into()],
            cart_contents: vec![CartItem {
                product_id: "prod_00123".into(),
                quantity: 2,
                price: 129.99,
            }],
        }
    }

    fn txn_json() -> serde_json::Value {
        serde_json::to_value(seed_transaction()).expect("serialise")
    }

    fn decode_txn_value(v: &serde_json::Value) -> Result<Transaction, Rejection> {
        decode_transaction(&wrap(Kind::Transaction, v.to_string().as_bytes()))
    }

    #[test]
    fn clean_records_round_trip() {
        let t = seed_transaction();
        assert_eq!(decode_transaction(&encode(Kind::Transaction, &t)), Ok(t));
        let s = seed_session();
        assert_eq!(decode_session(&encode(Kind::Session, &s)), Ok(s));
    }

    #[test]
    fn the_one_pass_read_gives_what_the_general_read_gives() {
        let general = |b: &[u8]| parse(open_kind(b, Kind::Session)?).and_then(validate::session);
        let good = String::from_utf8(encode(Kind::Session, &seed_session())).expect("utf8");
        let data = &good[good.find("\"data\":").expect("data") + 7..good.len() - 1];
        let cases = [
            good.clone(),
            // An extra key after the data, or the data twice.
            format!("{}, \"x\": 1}}", &good[..good.len() - 1]),
            format!("{},\"data\":{data}}}", &good[..good.len() - 1]),
            // Trailing junk, a cut record, another kind, spaces.
            format!("{good}x"),
            good[..good.len() - 2].to_string(),
            good.replacen("\"session\"", "\"transaction\"", 1),
            good.replacen("\"data\":", "\"data\": ", 1),
            good.replacen("\"user_id\":\"user_000042\"", "\"user_id\":7", 1),
        ];
        for c in &cases {
            assert_eq!(decode_session(c.as_bytes()), general(c.as_bytes()), "{c}");
        }
        assert!(decode_session(cases[0].as_bytes()).is_ok());
        assert!(
            decode_session(cases[2].as_bytes()).is_err(),
            "a duplicate key"
        );
    }

    #[test]
    fn garbage_and_truncation_are_invalid_json() {
        let r = decode_transaction(b"this is not json").map(|_| ());
        assert_eq!(r.map_err(|e| e.code()), Err("invalid_json"));
        let full = encode(Kind::Transaction, &seed_transaction());
        let cut = &full[..full.len() / 2];
        let r = decode_transaction(cut).map(|_| ());
        assert_eq!(r.map_err(|e| e.code()), Err("invalid_json"));
        assert_eq!(
            decode_transaction(b"").map(|_| ()).map_err(|e| e.code()),
            Err("invalid_json")
        );
        // Invalid UTF-8 inside a string.
        let r = decode_transaction(b"{\"v\":1,\"kind\":\"transaction\",\"data\":\"\xff\"}");
        assert!(matches!(r, Err(Rejection::InvalidJson(_))), "{r:?}");
    }

    #[test]
    fn wrong_types_are_named() {
        let mut v = txn_json();
        v["items"][0]["quantity"] = serde_json::json!("two");
        assert!(
            matches!(decode_txn_value(&v), Err(Rejection::WrongType(m)) if m.contains("string"))
        );
        let mut v = txn_json();
        v["payment_method"] = serde_json::json!("bitcoin");
        assert_eq!(
            decode_txn_value(&v).map_err(|e| e.code()).map(|_| ()),
            Err("wrong_type")
        );
        let r = decode_transaction(br#"[1,2,3]"#).map(|_| ());
        assert_eq!(r.map_err(|e| e.code()), Err("wrong_type"));
    }

    #[test]
    fn unknown_version_and_wrong_kind_are_refused() {
        let s = String::from_utf8(encode(Kind::Session, &seed_session())).expect("utf8");
        let v2 = s.replacen("\"v\":1", "\"v\":2", 1);
        assert_eq!(
            decode_session(v2.as_bytes()),
            Err(Rejection::UnsupportedVersion(2))
        );
        let vs = s.replacen("\"v\":1", "\"v\":\"1\"", 1);
        assert_eq!(
            decode_session(vs.as_bytes()).map_err(|e| e.code()),
            Err("wrong_type")
        );
        let nov = s.replacen("\"v\":1,", "", 1);
        assert_eq!(
            decode_session(nov.as_bytes()),
            Err(Rejection::MissingField("v"))
        );
        let r = decode_transaction(s.as_bytes()).map(|_| ());
        assert_eq!(r.map_err(|e| e.code()), Err("wrong_kind"));
    }

    #[test]
    fn seed_cleaning_rules() {
        let mut v = txn_json();
        v["user_id"] = serde_json::Value::Null;
        assert_eq!(decode_txn_value(&v), Err(Rejection::MissingUserId));
        let mut v = txn_json();
        v["user_id"] = serde_json::json!("  ");
        assert_eq!(decode_txn_value(&v), Err(Rejection::MissingUserId));
        let mut v = txn_json();
        v["items"] = serde_json::json!([]);
        assert_eq!(decode_txn_value(&v), Err(Rejection::EmptyItems));
        let mut v = txn_json();
        v.as_object_mut().expect("object").remove("items");
        assert_eq!(decode_txn_value(&v), Err(Rejection::EmptyItems));
        let mut v = txn_json();
        v["timestamp"] = serde_json::json!("2025-02-30T10:00:00");
        assert_eq!(
            decode_txn_value(&v).map_err(|e| e.code()).map(|_| ()),
            Err("bad_timestamp")
        );
        // A parseable time far ahead of the clock: its own reason, so it
        // never reaches a watermark. A day ahead is still taken.
        let mut v = txn_json();
        v["timestamp"] = serde_json::json!("2999-01-01T10:00:00");
        assert_eq!(
            decode_txn_value(&v),
            Err(Rejection::FutureTimestamp("2999-01-01T10:00:00".into()))
        );
        let soon = crate::validate::latest_accepted() - chrono::TimeDelta::hours(1);
        v["timestamp"] = serde_json::json!(soon.format("%Y-%m-%dT%H:%M:%S").to_string());
        assert!(decode_txn_value(&v).is_ok());
        let mut v = txn_json();
        v["items"][0]["unit_price"] = serde_json::json!(0.0);
        assert_eq!(
            decode_txn_value(&v).map_err(|e| e.code()).map(|_| ()),
            Err("non_positive_price")
        );
    }

    /// Ids are any text of 1 to 256 bytes (`MAX_ID_BYTES`); a longer one is
    /// `id_too_long`, naming the field.
    #[test]
    fn ids_of_any_form_up_to_256_bytes() {
        let mut v = txn_json();
        v["user_id"] = serde_json::json!("Kundin Ä/7 ✓");
        v["items"][0]["product_id"] = serde_json::json!("x".repeat(256));
        let t = decode_txn_value(&v).expect("any text up to 256 bytes");
        assert_eq!(t.user_id, "Kundin Ä/7 ✓");
        v["items"][0]["product_id"] = serde_json::json!("x".repeat(257));
        assert_eq!(
            decode_txn_value(&v),
            Err(Rejection::IdTooLong {
                field: "items.product_id",
                bytes: 257
            })
        );
        let mut v = txn_json();
        // 86 three-byte letters: 258 bytes.
        v["user_id"] = serde_json::json!("✓".repeat(86));
        assert_eq!(
            decode_txn_value(&v).map_err(|e| e.to_string()).map(|_| ()),
            Err("user_id of 258 bytes is longer than the limit of 256 bytes".into())
        );
    }

    #[test]
    fn money_must_add_up() {
        let mut v = txn_json();
        v["items"][0]["subtotal"] = serde_json::json!(300.0);
        assert_eq!(
            decode_txn_value(&v),
            Err(Rejection::SubtotalMismatch {
                product_id: "prod_00123".into(),
                subtotal: 300.0,
                expected: 259.98
            })
        );
        let mut v = txn_json();
        v["total"] = serde_json::json!(259.98);
        assert_eq!(
            decode_txn_value(&v),
            Err(Rejection::TotalMismatch {
                total: 259.98,
                expected: 233.99
            })
        );
        let mut v = txn_json();
        v["items"][0]["quantity"] = serde_json::json!(-1);
        assert_eq!(
            decode_txn_value(&v).map_err(|e| e.code()).map(|_| ()),
            Err("non_positive_quantity")
        );
        // A cent of rounding is tolerated; the record keeps its own figures.
        let mut v = txn_json();
        v["total"] = serde_json::json!(234.0);
        assert_eq!(decode_txn_value(&v).map(|t| t.total), Ok(234.0));
    }

    #[test]
    fn session_rules() {
        let base = serde_json::to_value(seed_session()).expect("serialise");
        let dec = |v: &serde_json::Value| {
            decode_session(&wrap(Kind::Session, v.to_string().as_bytes())).map(|_| ())
        };
        let mut v = base.clone();
        v["duration_seconds"] = serde_json::json!(-5);
        assert_eq!(dec(&v), Err(Rejection::BadDuration(-5)));
        let mut v = base.clone();
        v["conversion_status"] = serde_json::json!("browsed");
        assert_eq!(
            dec(&v),
            Err(Rejection::InconsistentStatus {
                status: "browsed",
                cart_items: 1
            })
        );
        let mut v = base.clone();
        v["cart_contents"] = serde_json::json!([]);
        assert_eq!(
            dec(&v),
            Err(Rejection::InconsistentStatus {
                status: "converted",
                cart_items: 0
            })
        );
        let mut v = base.clone();
        v["device_info"]["type"] = serde_json::json!("smartwatch");
        assert_eq!(dec(&v).map_err(|e| e.code()), Err("wrong_type"));
        let mut v = base;
        v.as_object_mut().expect("object").remove("session_id");
        assert_eq!(dec(&v), Err(Rejection::MissingField("session_id")));
    }

    #[test]
    fn every_code_is_listed_once() {
        let mut codes = Rejection::CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Rejection::CODES.len());
        assert!(Rejection::CODES.contains(&Rejection::Late { lag_seconds: 1 }.code()));
    }
}
