//! How server functions' answers travel: JSON, decoded from text.
//!
//! The browser decodes the same answer types in two places: a resource
//! hydrates from the JSON text the server rendered into the page
//! (`serde_json::from_str`), and a server function called later decodes its
//! answer. server_fn's own JSON codec decodes from bytes
//! (`serde_json::from_slice`), another reader type, so the WASM held a
//! second copy of every answer type's decoder. This codec checks that the
//! answer is UTF-8 and decodes it as text, so both share one copy
//! (docs/benchmarks.md, WASM). On the wire it is server_fn's JSON: same
//! content type, same bytes.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// JSON, decoded from text (see the module's documentation).
pub struct JsonTextEncoding;

/// The answer of every server function: `#[server(output = JsonText)]`.
pub type JsonText = Post<JsonTextEncoding>;

impl ContentType for JsonTextEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonTextEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

/// Why an answer could not be decoded.
#[derive(Debug)]
pub enum JsonTextError {
    NotUtf8(std::str::Utf8Error),
    Json(serde_json::Error),
}

impl std::fmt::Display for JsonTextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotUtf8(e) => write!(f, "the answer is not UTF-8: {e}"),
            Self::Json(e) => write!(f, "the answer is not the expected JSON: {e}"),
        }
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonTextEncoding {
    type Error = JsonTextError;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(JsonTextError::NotUtf8)?;
        serde_json::from_str(text).map_err(JsonTextError::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_function_answers_through_this_codec() {
        let src = include_str!("api.rs");
        let declared = src.matches("#[server(endpoint").count();
        assert!(declared > 20, "{declared}");
        assert_eq!(src.matches(", output = JsonText)]").count(), declared);
    }

    #[test]
    fn an_answer_round_trips_and_bad_bytes_say_why() {
        let v = vec![("pg-0".to_string(), 1u64)];
        let bytes = <JsonTextEncoding as Encodes<_>>::encode(&v).unwrap();
        assert_eq!(&bytes[..], br#"[["pg-0",1]]"#);
        let back: Vec<(String, u64)> = JsonTextEncoding::decode(bytes).unwrap();
        assert_eq!(back, v);
        let e = <JsonTextEncoding as Decodes<u64>>::decode(Bytes::from_static(b"\xff")).unwrap_err();
        assert!(e.to_string().starts_with("the answer is not UTF-8"), "{e}");
        let e = <JsonTextEncoding as Decodes<u64>>::decode(Bytes::from_static(b"\"x\"")).unwrap_err();
        assert!(e.to_string().starts_with("the answer is not the expected JSON"), "{e}");
    }
}
