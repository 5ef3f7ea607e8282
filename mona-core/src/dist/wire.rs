//! The byte encoding of what ranks send each other besides gradients: a sharded evaluation's
//! predictions and rank 0's metrics.
//!
//! Little-endian fixed-width numbers and length-prefixed runs, written and read in the same
//! order by the same build, so that floats travel bit for bit (`to_le_bytes`) and a rank of
//! another build is caught by a failed read instead of a wrong number.

use super::DistError;

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub struct WireWriter {
    buf: Vec<u8>,
}

impl WireWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn usize(&mut self, v: usize) -> &mut Self {
        self.u64(v as u64)
    }

    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// The length, then the values.
    pub fn f32s(&mut self, v: &[f32]) -> &mut Self {
        self.usize(v.len());
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self
    }

    /// The length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.usize(v.len());
        self.buf.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads back what a [`WireWriter`] wrote, in the same order; `what` names the exchange in
/// errors.
#[derive(Debug)]
pub struct WireReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> WireReader<'a> {
    pub fn new(what: &'a str, bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            what,
        }
    }

    /// An error of this exchange saying what was wrong.
    pub fn error(&self, message: impl Into<String>) -> DistError {
        DistError::Wire {
            what: self.what.to_string(),
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DistError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(format!(
                "{n} bytes wanted at byte {} of {}",
                self.pos,
                self.bytes.len()
            )));
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DistError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u64(&mut self) -> Result<u64, DistError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn usize(&mut self) -> Result<usize, DistError> {
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| self.error(format!("{v} does not fit a usize")))
    }

    pub fn f64(&mut self) -> Result<f64, DistError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    pub fn f32s(&mut self) -> Result<Vec<f32>, DistError> {
        let n = self.usize()?;
        let raw = self.take(n.checked_mul(4).ok_or_else(|| self.error("too long"))?)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DistError> {
        let n = self.usize()?;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<String, DistError> {
        let raw = self.bytes()?;
        String::from_utf8(raw.to_vec()).map_err(|e| self.error(e.to_string()))
    }

    /// Whether everything was read.
    pub fn is_done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_bit_for_bit_and_short_input_is_named() {
        let mut w = WireWriter::new();
        w.usize(7)
            .f64(-0.1)
            .f32s(&[1.5, f32::NAN, -0.0])
            .str("näme")
            .bytes(&[0, 255]);
        let bytes = w.finish();
        let mut r = WireReader::new("test results", &bytes);
        assert_eq!(r.usize().unwrap(), 7);
        assert_eq!(r.f64().unwrap().to_bits(), (-0.1f64).to_bits());
        let f = r.f32s().unwrap();
        assert_eq!(f[0], 1.5);
        assert!(f[1].is_nan());
        assert_eq!(f[2].to_bits(), (-0.0f32).to_bits());
        assert_eq!(r.str().unwrap(), "näme");
        assert_eq!(r.bytes().unwrap(), &[0, 255]);
        assert!(r.is_done());
        let mut short = WireReader::new("test results", &bytes[..12]);
        short.usize().unwrap();
        assert_eq!(
            short.f64().unwrap_err().to_string(),
            "test results: a rank sent data that does not decode (8 bytes wanted at byte 8 of 12); are all ranks the same build?"
        );
    }
}
