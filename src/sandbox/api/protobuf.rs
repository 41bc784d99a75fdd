//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded to the JSON the rest
//! of the API server works on.
//!
//! kubectl's typed subcommands (`create namespace`, `create deployment`, `auth can-i`, ...) send
//! protobuf and do not fall back to JSON on 415, so a server without it cannot serve them. The
//! envelope is upstream's: the magic `k8s\0`, then a `runtime.Unknown` holding the type and the
//! object's bytes. Only the types and fields in [`super::protobuf_schema`] are decoded; any other
//! field is accepted when it holds its zero value (Go's generated code writes every non-pointer
//! field) and answered with 415 otherwise, so nothing a client sent is silently dropped.

use serde_json::{Map, Value, json};

use super::protobuf_schema::message_for;
use crate::sandbox::status::ApiError;

/// What a field holds on the wire and in JSON.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// A string.
    Str,
    /// A varint integer.
    Int,
    /// A varint boolean.
    Bool,
    /// A nested message.
    Msg(&'static Message),
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>`, values base64 in JSON.
    MapBytes,
    /// `map<string, Quantity>`, values strings in JSON.
    MapQuantity,
    /// `intstr.IntOrString`, a number or a string in JSON.
    IntOrString,
    /// `meta/v1.Time`, RFC 3339 in JSON.
    Time,
}

/// One field of a message.
pub(super) struct Field {
    /// Field number.
    pub num: u32,
    /// JSON name.
    pub name: &'static str,
    /// Wire and JSON shape.
    pub kind: Kind,
    /// Whether it is a list.
    pub repeated: bool,
}

/// A message type.
pub(super) struct Message {
    /// Type name, for error messages.
    pub name: &'static str,
    /// Its decoded fields.
    pub fields: &'static [Field],
}

/// The magic prefix of Kubernetes protobuf bodies.
const MAGIC: &[u8] = b"k8s\0";
/// Nesting limit, against hostile bodies.
const MAX_DEPTH: usize = 32;

/// A protobuf request body as the JSON object it encodes.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not start with the k8s protobuf magic"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (num, wire) in parse(rest)? {
        match (num, wire) {
            (1, Wire::Bytes(meta)) => {
                for (n, w) in parse(meta)? {
                    match (n, w) {
                        (1, Wire::Bytes(v)) => api_version = utf8(v)?,
                        (2, Wire::Bytes(v)) => kind = utf8(v)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(v)) => raw = v,
            (3, Wire::Bytes(enc)) if !enc.is_empty() => {
                return Err(unsupported(&format!("content encoding {:?}", utf8(enc)?)));
            }
            _ => {}
        }
    }
    let message = message_for(&api_version, &kind)
        .ok_or_else(|| unsupported(&format!("kind {kind} of {api_version}")))?;
    let mut obj = decode_message(message, raw, 0)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

/// One field as read off the wire.
#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed(u64),
    Bytes(&'a [u8]),
}

fn parse(mut b: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, ApiError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let num = u32::try_from(key >> 3).map_err(|_| malformed("field number out of range"))?;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(&mut b)?),
            1 => Wire::Fixed(u64::from_le_bytes(
                take(&mut b, 8)?.try_into().unwrap_or([0; 8]),
            )),
            2 => {
                let len = usize::try_from(varint(&mut b)?)
                    .map_err(|_| malformed("length out of range"))?;
                Wire::Bytes(take(&mut b, len)?)
            }
            5 => Wire::Fixed(u64::from(u32::from_le_bytes(
                take(&mut b, 4)?.try_into().unwrap_or([0; 4]),
            ))),
            other => return Err(malformed(&format!("wire type {other}"))),
        };
        out.push((num, wire));
    }
    Ok(out)
}

fn varint(b: &mut &[u8]) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b
            .split_first()
            .ok_or_else(|| malformed("truncated varint"))?;
        *b = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(malformed("varint too long"))
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], ApiError> {
    if b.len() < n {
        return Err(malformed("truncated field"));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn decode_message(m: &Message, bytes: &[u8], depth: usize) -> Result<Value, ApiError> {
    if depth > MAX_DEPTH {
        return Err(malformed("nested too deeply"));
    }
    let mut obj = Map::new();
    for (num, wire) in parse(bytes)? {
        let Some(field) = m.fields.iter().find(|f| f.num == num) else {
            if is_zero(wire, depth) {
                continue;
            }
            return Err(unsupported(&format!("field {num} of {}", m.name)));
        };
        let value = decode_value(field, wire, depth)?;
        match field.kind {
            Kind::MapStr | Kind::MapBytes | Kind::MapQuantity => {
                let entry = obj.entry(field.name).or_insert_with(|| json!({}));
                if let (Some(map), Value::Object(pair)) = (entry.as_object_mut(), value) {
                    map.extend(pair);
                }
            }
            _ if field.repeated => {
                let entry = obj.entry(field.name).or_insert_with(|| json!([]));
                if let Some(list) = entry.as_array_mut() {
                    list.push(value);
                }
            }
            _ if is_empty(&value) => {}
            _ => {
                obj.insert(field.name.to_string(), value);
            }
        }
    }
    Ok(Value::Object(obj))
}

/// Go's `omitempty` on the JSON side: empty strings, objects and nulls are left out.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn decode_value(field: &Field, wire: Wire<'_>, depth: usize) -> Result<Value, ApiError> {
    let mismatch = || malformed(&format!("field {} has the wrong wire type", field.name));
    Ok(match (field.kind, wire) {
        (Kind::Str, Wire::Bytes(b)) => json!(utf8(b)?),
        // int32 and int64 alike: negative values are ten-byte two's complement varints.
        (Kind::Int, Wire::Varint(v)) => json!(v as i64),
        (Kind::Bool, Wire::Varint(v)) => json!(v != 0),
        (Kind::Msg(m), Wire::Bytes(b)) => decode_message(m, b, depth + 1)?,
        (Kind::MapStr | Kind::MapBytes | Kind::MapQuantity, Wire::Bytes(b)) => {
            let (mut key, mut value) = (String::new(), Value::String(String::new()));
            for (n, w) in parse(b)? {
                match (n, w) {
                    (1, Wire::Bytes(k)) => key = utf8(k)?,
                    (2, Wire::Bytes(v)) => {
                        value = match field.kind {
                            Kind::MapBytes => json!(base64(v)),
                            Kind::MapQuantity => json!(quantity(v)?),
                            _ => json!(utf8(v)?),
                        }
                    }
                    _ => return Err(mismatch()),
                }
            }
            let mut pair = Map::new();
            pair.insert(key, value);
            Value::Object(pair)
        }
        (Kind::IntOrString, Wire::Bytes(b)) => {
            let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
            for (n, w) in parse(b)? {
                match (n, w) {
                    (1, Wire::Varint(t)) => is_string = t == 1,
                    (2, Wire::Varint(v)) => int = v as i64,
                    (3, Wire::Bytes(s)) => string = utf8(s)?,
                    _ => return Err(mismatch()),
                }
            }
            if is_string { json!(string) } else { json!(int) }
        }
        (Kind::Time, Wire::Bytes(b)) => {
            let mut seconds = 0i64;
            for (n, w) in parse(b)? {
                if let (1, Wire::Varint(s)) = (n, w) {
                    seconds = s as i64;
                }
            }
            match chrono::DateTime::from_timestamp(seconds, 0) {
                Some(t) if seconds != 0 => json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                _ => Value::Null,
            }
        }
        _ => return Err(mismatch()),
    })
}

fn quantity(b: &[u8]) -> Result<String, ApiError> {
    for (n, w) in parse(b)? {
        if let (1, Wire::Bytes(s)) = (n, w) {
            return utf8(s);
        }
    }
    Ok(String::new())
}

/// Whether a field the schema does not know holds its zero value (recursively for messages).
fn is_zero(wire: Wire<'_>, depth: usize) -> bool {
    match wire {
        Wire::Varint(v) | Wire::Fixed(v) => v == 0,
        Wire::Bytes([]) => true,
        Wire::Bytes(b) => {
            depth < MAX_DEPTH
                && parse(b).is_ok_and(|fields| fields.iter().all(|(_, w)| is_zero(*w, depth + 1)))
        }
    }
}

fn utf8(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
}

/// RFC 4648 base64 with padding, as JSON carries bytes.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("the protobuf request body is malformed: {what}"))
}

fn unsupported(what: &str) -> ApiError {
    ApiError::unsupported_media_type(format!(
        "the sandbox decodes protobuf bodies only for the types kubectl's typed commands send, not {what}; hint: send JSON (kubectl create -f or apply)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(num: u8, b: &[u8]) -> Vec<u8> {
        let mut out = vec![(num << 3) | 2, u8::try_from(b.len()).unwrap_or(0)];
        out.extend_from_slice(b);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [
            bytes_field(1, api_version.as_bytes()),
            bytes_field(2, kind.as_bytes()),
        ]
        .concat();
        [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, raw),
            bytes_field(3, b""),
        ]
        .concat()
    }

    #[test]
    fn protobuf_namespace_decodes_to_json() {
        let label = [bytes_field(1, b"team"), bytes_field(2, b"a")].concat();
        // name, an empty generateName, generation 0 (unknown fields at zero), a label.
        let meta = [
            bytes_field(1, b"x"),
            bytes_field(2, b""),
            vec![7 << 3, 0],
            bytes_field(8, b""),
            bytes_field(11, &label),
        ]
        .concat();
        let raw = [
            bytes_field(1, &meta),
            bytes_field(2, b""),
            bytes_field(3, b""),
        ]
        .concat();
        let obj = decode(&envelope("v1", "Namespace", &raw)).ok();
        assert_eq!(
            obj,
            Some(json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "x", "generation": 0, "labels": {"team": "a"}}}))
        );
    }

    #[test]
    fn protobuf_unknown_field_with_a_value_is_refused() {
        // Field 99 of ObjectMeta carries a string: refusing beats dropping it.
        let meta = [bytes_field(1, b"x"), vec![0x9a, 0x06, 1, b'v']].concat();
        let raw = bytes_field(1, &meta);
        let err = decode(&envelope("v1", "Namespace", &raw)).err();
        assert_eq!(err.as_ref().map(|e| e.code), Some(415));
        assert!(
            err.is_some_and(|e| e.message.contains("field 99 of ObjectMeta")),
            "names the field"
        );
        let unknown_kind = decode(&envelope("batch/v1", "Job", b"")).err();
        assert_eq!(unknown_kind.map(|e| e.code), Some(415));
        assert_eq!(decode(b"{}").err().map(|e| e.code), Some(400));
        assert_eq!(decode(b"k8s\0\x0a\x05ab").err().map(|e| e.code), Some(400));
    }

    #[test]
    fn protobuf_int_or_string_and_bytes() {
        let int = [vec![1 << 3, 0], vec![2 << 3, 5]].concat();
        let string = [vec![1 << 3, 1], bytes_field(3, b"25%")].concat();
        let spec = [bytes_field(1, &int), bytes_field(3, &string)].concat();
        let raw = bytes_field(2, &spec);
        let obj = decode(&envelope("policy/v1", "PodDisruptionBudget", &raw)).ok();
        assert_eq!(
            obj.map(|o| o["spec"].clone()),
            Some(json!({"minAvailable": 5, "maxUnavailable": "25%"}))
        );
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi!"), "aGkh");
    }
}
