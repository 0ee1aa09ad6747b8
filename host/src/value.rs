//! Values as users hand them in and get them back: text stays text, bytes stay bytes.

use kad_core::ValueKind;

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
}
