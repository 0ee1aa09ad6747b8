//! Values as users hand them in and get them back: text stays text, bytes stay bytes, and in
//! JSON bytes are written with an explicit encoding (base64 or hex).

use base64::Engine as _;
use kad_core::ValueKind;
use serde::{Deserialize, Serialize};

/// How a value's `data` is written in JSON (the `encoding` field of the HTTP API and of
/// `kad get --json`): text as itself, bytes as base64 or hex.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum Encoding {
    /// `data` is the text itself: a value of kind `text`.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// `data` is standard base64 (RFC 4648, with padding): a value of kind `bytes`.
    #[serde(rename = "base64")]
    Base64,
    /// `data` is hex (two digits per byte): a value of kind `bytes`.
    #[serde(rename = "hex")]
    Hex,
}

impl Encoding {
    /// The name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Base64 => "base64",
            Encoding::Hex => "hex",
        }
    }
}

/// Why `data` could not be read in the encoding it claims.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not standard base64.
    #[error("data is not base64 (standard alphabet, with padding): {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not hex.
    #[error("data is not hex: {0}")]
    Hex(#[from] hex::FromHexError),
}

/// A value stored in the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// UTF-8 text.
    Text(String),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
}

impl Value {
    /// The kind tag carried on the wire.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Text(_) => ValueKind::Text,
            Value::Bytes(_) => ValueKind::Bytes,
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Text(s) => s.as_bytes(),
            Value::Bytes(b) => b,
        }
    }

    /// Reads `data` written in `encoding`: `utf-8` gives text, `base64` and `hex` give bytes.
    pub fn decode(data: &str, encoding: Encoding) -> Result<Value, DecodeError> {
        Ok(match encoding {
            Encoding::Utf8 => Value::Text(data.to_owned()),
            Encoding::Base64 => Value::Bytes(base64::engine::general_purpose::STANDARD.decode(data)?),
            Encoding::Hex => Value::Bytes(hex::decode(data)?),
        })
    }

    /// The value for JSON: its kind (`text` or `bytes`), the encoding of `data` (`utf-8` for
    /// text, `bytes_as` for bytes) and `data`.
    pub fn encode(&self, bytes_as: Encoding) -> (&'static str, Encoding, String) {
        match (self, bytes_as) {
            (Value::Text(s), _) => ("text", Encoding::Utf8, s.clone()),
            (Value::Bytes(b), Encoding::Hex) => ("bytes", Encoding::Hex, hex::encode(b)),
            (Value::Bytes(b), _) => {
                ("bytes", Encoding::Base64, base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    /// Rebuilds a value from its kind and bytes; text that is not UTF-8 comes back as bytes.
    pub fn from_parts(kind: ValueKind, bytes: &[u8]) -> Self {
        match (kind, std::str::from_utf8(bytes)) {
            (ValueKind::Text, Ok(s)) => Value::Text(s.to_owned()),
            _ => Value::Bytes(bytes.to_vec()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl<const N: usize> From<&[u8; N]> for Value {
    fn from(b: &[u8; N]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&hex::encode(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_bytes_keep_their_kind() {
        let t = Value::from("héllo");
        assert_eq!(Value::from_parts(t.kind(), t.as_bytes()), t);
        let b = Value::from(&[0xff, 0x00][..]);
        assert_eq!(Value::from_parts(b.kind(), b.as_bytes()), b);
        assert_eq!(Value::from_parts(ValueKind::Text, &[0xff]), Value::Bytes(vec![0xff]));
    }

    #[test]
    fn json_encodings_round_trip() {
        let b = Value::Bytes(vec![0x00, 0xff]);
        assert_eq!(b.encode(Encoding::Base64), ("bytes", Encoding::Base64, "AP8=".into()));
        assert_eq!(b.encode(Encoding::Hex), ("bytes", Encoding::Hex, "00ff".into()));
        assert_eq!(Value::decode("AP8=", Encoding::Base64).unwrap(), b);
        assert_eq!(Value::decode("00ff", Encoding::Hex).unwrap(), b);
        assert_eq!(Value::decode("00ff", Encoding::Utf8).unwrap(), Value::Text("00ff".into()));
        assert_eq!(Value::from("hi").encode(Encoding::Base64), ("text", Encoding::Utf8, "hi".into()));
        assert!(Value::decode("AP8", Encoding::Base64).is_err());
        assert!(Value::decode("0g", Encoding::Hex).is_err());
    }
}
