//! How server functions' answers travel and how the browser reads them:
//! JSON, read first into a `serde_json::Value` and then into the answer's
//! type.
//!
//! The browser decodes the same answer types in three places: a resource
//! hydrates from the JSON text the server rendered into the page, a server
//! function called later decodes its answer, and the live feeds decode
//! their messages. All three go through [`from_json_text`], so the WASM
//! holds one decoder per answer type. That decoder reads a `Value` (a
//! match on an enum) rather than text, whose parsing (whitespace, escapes,
//! numbers, error positions) is otherwise compiled into every type's
//! decoder: 2% less WASM, for a second pass over each answer in the browser
//! (docs/benchmarks.md, WASM). On the wire it is server_fn's JSON: same
//! content type, same bytes.

use leptos::prelude::Resource;
use leptos::server::codee;
use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// Read JSON text as a `T`, through a `serde_json::Value` (see the module's
/// documentation).
pub fn from_json_text<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str::<serde_json::Value>(text).and_then(T::deserialize)
}

/// A resource whose value hydrates through [`from_json_text`]: every page's
/// resource is made here.
pub fn resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, JsonValue>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

/// How a [`resource`]'s value travels from the server's render into the
/// page: JSON text, read through [`from_json_text`].
pub struct JsonValue;

impl<T: Serialize> codee::Encoder<T> for JsonValue {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, Self::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> codee::Decoder<T> for JsonValue {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, Self::Error> {
        from_json_text(text)
    }
}

/// JSON, decoded through [`from_json_text`] (see the module's documentation).
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
        from_json_text(text).map_err(JsonTextError::Json)
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
    fn every_resource_hydrates_through_this_codec() {
        // A resource made with Resource::new would hydrate with serde_json's
        // text decoder: a second decoder of its type in the WASM. Every
        // source file of the crate is read, so a new page is checked too.
        fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("codec.rs") {
                    out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut files = Vec::new();
        // Read at run time, as tests/integration/checkout.rs asks: a path
        // compiled in would point at the checkout that built the test.
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests");
        sources(&std::path::Path::new(&dir).join("src"), &mut files);
        let made_here: usize = files
            .iter()
            .map(|(_, s)| s.matches("crate::codec::resource(").count())
            .sum();
        assert!(made_here > 10, "{made_here}");
        for (path, s) in &files {
            assert!(
                !s.contains(" Resource::new("),
                "{path}: a resource bypasses codec::resource"
            );
            let typed = s.matches("serde_json::from_str::<").count()
                - s.matches("serde_json::from_str::<serde_json::Value>").count()
                - s.matches("serde_json::from_str::<ApiError>").count();
            assert_eq!(typed, 0, "{path}: a feed bypasses codec::from_json_text");
        }
    }

    #[test]
    fn a_resource_value_round_trips_through_a_json_value() {
        let v: Result<Vec<(String, u64)>, String> = Ok(vec![("pg-0".to_string(), 1)]);
        let text = <JsonValue as codee::Encoder<_>>::encode(&v).unwrap();
        assert_eq!(text, r#"{"Ok":[["pg-0",1]]}"#);
        let back: Result<Vec<(String, u64)>, String> = <JsonValue as codee::Decoder<_>>::decode(&text).unwrap();
        assert_eq!(back, v);
        assert!(from_json_text::<u64>("\"x\"").is_err());
        assert!(from_json_text::<u64>("1 2").is_err());
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
