//! A compact binary encoding for what only ecomflow reads back (the
//! aggregator's checkpoint, the embedded document store's sessions):
//! unsigned LEB128 varints, zigzag for signed numbers, length-prefixed
//! strings. Small numbers (counts, deltas between sorted ids) take one
//! byte, so the full shop's aggregator state is a few tens of MB instead of
//! the hundreds its JSON took.
//!
//! Hand-written rather than postcard (serde's varint format, from the
//! derives the records already have): on 200,000 sessions shaped like the
//! default shop's, a session takes 174-192 ns to encode here against
//! 552-581 ns with postcard 1 (a third of the time), 728-814 ns to decode
//! against 768-834 ns (about the same), and 147.5 bytes against 160.5 (postcard writes the start time as text,
//! as chrono's serde does). Measured by `cargo test -p stores --release
//! --lib codec_against_postcard -- --ignored --nocapture`, three runs. The
//! aggregator's checkpoint has no serde derives to compare: its tables are
//! written in the same varints.
//!
//! [`Encoder`] buffers for a stream; [`put_u64`], [`put_i64`],
//! [`put_f64`] and [`put_str`] append to a `Vec` for one small value. Reading never panics:
//! a truncated or corrupted input is an error.

use std::io::{self, Write};

/// A checkpoint that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Appends an unsigned number to `out`.
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a signed number (zigzag) to `out`.
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a string, length first, to `out`.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a float as its IEEE bits (8 bytes, little endian): exactly the
/// value, NaN payloads and the sign of zero included.
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

/// Writes values to a byte sink.
pub struct Encoder<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Encoder<W> {
    /// An encoder over `out` (buffered here: `out` need not be).
    pub fn new(out: W) -> Self {
        Encoder {
            out,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// An unsigned number.
    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        put_u64(&mut self.buf, v);
        self.spill()
    }

    /// A signed number (zigzag).
    pub fn i64(&mut self, v: i64) -> io::Result<()> {
        put_i64(&mut self.buf, v);
        self.spill()
    }

    /// A length or index.
    pub fn usize(&mut self, v: usize) -> io::Result<()> {
        self.u64(v as u64)
    }

    /// Raw bytes, as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.spill()
    }

    /// A string, length first.
    pub fn str(&mut self, s: &str) -> io::Result<()> {
        put_str(&mut self.buf, s);
        self.spill()
    }

    /// Writes what is buffered and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads values back from bytes.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes, at: 0 }
    }

    fn err(&self, what: &str) -> DecodeError {
        DecodeError(format!("{what} at byte {}", self.at))
    }

    /// An unsigned number.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| self.err("truncated"))?;
            self.at += 1;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.err("number out of range"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("number out of range"))
    }

    /// A number that must fit in `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| self.err("number out of range"))
    }

    /// A signed number (zigzag).
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A length, checked against what is left so a corrupted one cannot
    /// make the reader reserve gigabytes: every element takes a byte.
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let v = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if v > left {
            return Err(self.err("length beyond the end"));
        }
        Ok(v as usize)
    }

    /// `n` raw bytes.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| self.err("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// A float written by [`put_f64`].
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        let mut le = [0u8; 8];
        le.copy_from_slice(self.raw(8)?);
        Ok(f64::from_bits(u64::from_le_bytes(le)))
    }

    /// A string.
    pub fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.count()?;
        let b = self.raw(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("not UTF-8"))
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Whether everything was read.
    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_small_ones_take_a_byte() {
        let mut e = Encoder::new(Vec::new());
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            e.u64(v).expect("write");
        }
        for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            e.i64(v).expect("write");
        }
        e.str("sessions/3").expect("write");
        let bytes = e.finish().expect("finish");
        // 1 + 1 + 1 + 2 + 2 + 10 bytes of unsigned numbers.
        assert_eq!(&bytes[..5], &[0, 1, 127, 0x80, 0x01]);
        let mut d = Decoder::new(&bytes);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(d.u64().expect("read"), v);
        }
        for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            assert_eq!(d.i64().expect("read"), v);
        }
        assert_eq!(d.str().expect("read"), "sessions/3");
        assert!(d.done());
        let mut floats = Vec::new();
        for v in [1.5, -0.0, 0.1 + 0.2, f64::MIN_POSITIVE] {
            put_f64(&mut floats, v);
        }
        assert_eq!(&floats[..8], &[0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
        let mut d = Decoder::new(&floats);
        for v in [1.5, -0.0, 0.1 + 0.2, f64::MIN_POSITIVE] {
            assert_eq!(d.f64().expect("read").to_bits(), f64::to_bits(v));
        }
        assert!(d.done());
        assert!(Decoder::new(&floats[..7]).f64().is_err());
    }

    #[test]
    fn truncated_or_corrupted_input_is_an_error() {
        let mut d = Decoder::new(&[0x80]);
        assert!(d.u64().is_err());
        let mut d = Decoder::new(&[0xff; 11]);
        assert!(d.u64().is_err(), "more than 64 bits");
        // A length of a billion with three bytes left.
        let mut e = Encoder::new(Vec::new());
        e.usize(1_000_000_000).expect("write");
        let bytes = e.finish().expect("finish");
        let mut d = Decoder::new(&bytes);
        assert!(d.count().is_err());
        let mut d = Decoder::new(&[5, b'a']);
        assert!(d.str().is_err());
    }
}
