//! Frames: what one WebSocket binary message of an event stream carries.
//!
//! A frame is two DAG-CBOR values back to back: a header, then a body. A message has the header
//! `{op: 1, t: "#commit"}` (`t` names the lexicon type of the body, short form) and the event as
//! its body; an error has the header `{op: -1}` and the body `{error, message?}`, and the
//! server closes the stream after it (the event stream spec).

use bytes::Bytes;
use pds_ipld::Ipld;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, Seq};

/// The error sent (then the stream ends) for a cursor beyond the last event.
pub const FUTURE_CURSOR: &str = "FutureCursor";
/// The error sent (then the stream ends) to a subscriber that fell too far behind.
pub const CONSUMER_TOO_SLOW: &str = "ConsumerTooSlow";
/// The `#info` name sent before the replay of a cursor older than the kept events.
pub const OUTDATED_CURSOR: &str = "OutdatedCursor";

/// One frame, ready to send as a binary WebSocket message. Cloning shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    seq: Option<Seq>,
    bytes: Bytes,
    is_error: bool,
}

impl Frame {
    /// An error frame `{op: -1}` + `{error, message?}`. The stream ends after it.
    pub fn error(error: &str, message: Option<&str>) -> Frame {
        #[derive(Serialize)]
        struct ErrorHeader {
            op: i64,
        }
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
        }
        let mut bytes = Vec::new();
        write_cbor(&mut bytes, &ErrorHeader { op: -1 });
        write_cbor(&mut bytes, &ErrorBody { error, message });
        Frame {
            seq: None,
            bytes: bytes.into(),
            is_error: true,
        }
    }

    /// An `#info` message `{name, message?}` (not an event: it has no seq).
    pub fn info(name: &str, message: Option<&str>) -> Frame {
        #[derive(Serialize)]
        struct InfoBody<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
        }
        let mut bytes = message_header("#info");
        write_cbor(&mut bytes, &InfoBody { name, message });
        Frame {
            seq: None,
            bytes: bytes.into(),
            is_error: false,
        }
    }

    /// A message frame: the header for `t` and the encoded `body`.
    pub(crate) fn message(seq: Seq, t: &str, body: &impl Serialize) -> Result<Frame> {
        let mut bytes = message_header(t);
        serde_ipld_dagcbor::to_writer(&mut bytes, body)
            .map_err(|e| pds_ipld::Error::Encode(e.to_string()))?;
        Ok(Frame {
            seq: Some(seq),
            bytes: bytes.into(),
            is_error: false,
        })
    }

    /// A frame read back from the log.
    pub(crate) fn stored(seq: Seq, bytes: Vec<u8>) -> Frame {
        Frame {
            seq: Some(seq),
            bytes: bytes.into(),
            is_error: false,
        }
    }

    /// The event's seq; `None` for `#info` and error frames.
    pub fn seq(&self) -> Option<Seq> {
        self.seq
    }

    /// The bytes of the WebSocket message.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// True for an error frame (`op: -1`): the last frame of a subscription.
    pub fn is_error(&self) -> bool {
        self.is_error
    }
}

fn message_header(t: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct MessageHeader<'a> {
        op: i64,
        t: &'a str,
    }
    let mut bytes = Vec::new();
    write_cbor(&mut bytes, &MessageHeader { op: 1, t });
    bytes
}

/// Encodes values that cannot fail to encode: maps of strings and integers.
fn write_cbor(out: &mut Vec<u8>, value: &impl Serialize) {
    serde_ipld_dagcbor::to_writer(out, value).expect("strings and integers always encode");
}

/// A frame taken apart: its header and body as data model values.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedFrame {
    pub header: Ipld,
    pub body: Ipld,
}

impl DecodedFrame {
    /// The header's `op`: 1 for a message, -1 for an error.
    pub fn op(&self) -> Option<i128> {
        match map_get(&self.header, "op")? {
            Ipld::Integer(op) => Some(*op),
            _ => None,
        }
    }

    /// The header's `t` (`"#commit"`, `"#info"`, ...); `None` for an error.
    pub fn kind(&self) -> Option<&str> {
        match map_get(&self.header, "t")? {
            Ipld::String(t) => Some(t),
            _ => None,
        }
    }

    /// A field of the body.
    pub fn get(&self, field: &str) -> Option<&Ipld> {
        map_get(&self.body, field)
    }

    /// The body's `seq`, if it has one.
    pub fn seq(&self) -> Option<Seq> {
        match self.get("seq")? {
            Ipld::Integer(seq) => Seq::try_from(*seq).ok(),
            _ => None,
        }
    }
}

fn map_get<'a>(value: &'a Ipld, key: &str) -> Option<&'a Ipld> {
    match value {
        Ipld::Map(map) => map.get(key),
        _ => None,
    }
}

/// Reads a frame: exactly two strict DAG-CBOR values, a header map with `op` 1 (and a string
/// `t`) or -1, and a map body. For tests and tools; the server never decodes its own frames.
pub fn decode_frame(bytes: &[u8]) -> Result<DecodedFrame> {
    let bad = |what: String| Error::InvalidFrame(what);
    let mut de = serde_ipld_dagcbor::de::Deserializer::from_slice(bytes);
    let header = Ipld::deserialize(&mut de).map_err(|e| bad(format!("header: {e}")))?;
    let body = Ipld::deserialize(&mut de).map_err(|e| bad(format!("body: {e}")))?;
    de.end()
        .map_err(|_| bad("bytes after the body".to_owned()))?;
    let frame = DecodedFrame { header, body };
    if !matches!(frame.header, Ipld::Map(_)) || !matches!(frame.body, Ipld::Map(_)) {
        return Err(bad("header and body must be maps".to_owned()));
    }
    match (frame.op(), frame.kind()) {
        (Some(1), Some(_)) | (Some(-1), _) => Ok(frame),
        (Some(1), None) => Err(bad("a message header needs a string `t`".to_owned())),
        _ => Err(bad("header `op` must be 1 or -1".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_and_info_frames() {
        let frame = Frame::error(FUTURE_CURSOR, Some("Cursor in the future."));
        assert!(frame.is_error() && frame.seq().is_none());
        let decoded = decode_frame(frame.bytes()).unwrap();
        assert_eq!(decoded.op(), Some(-1));
        assert_eq!(decoded.kind(), None);
        assert_eq!(
            decoded.get("error"),
            Some(&Ipld::String("FutureCursor".into()))
        );
        assert_eq!(
            decoded.get("message"),
            Some(&Ipld::String("Cursor in the future.".into()))
        );

        let bare = decode_frame(Frame::error(CONSUMER_TOO_SLOW, None).bytes()).unwrap();
        let Ipld::Map(body) = &bare.body else {
            panic!()
        };
        assert_eq!(body.keys().collect::<Vec<_>>(), ["error"]);

        let info = Frame::info(OUTDATED_CURSOR, Some("m"));
        assert!(!info.is_error());
        let decoded = decode_frame(info.bytes()).unwrap();
        assert_eq!((decoded.op(), decoded.kind()), (Some(1), Some("#info")));
        assert_eq!(
            decoded.get("name"),
            Some(&Ipld::String("OutdatedCursor".into()))
        );
        // The header is canonical DAG-CBOR: `t` (shorter key) before `op`.
        assert_eq!(&info.bytes()[..13], b"\xa2at\x65#infobop\x01");
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let good = Frame::info(OUTDATED_CURSOR, None).into_bytes().to_vec();
        let header_only = &good[..13];
        let mut trailing = good.clone();
        trailing.push(0);
        let mut bad_op = pds_ipld::to_cbor(&Ipld::Map(
            [("op".to_owned(), Ipld::Integer(2))].into_iter().collect(),
        ))
        .unwrap();
        bad_op.extend(pds_ipld::to_cbor(&Ipld::Map(Default::default())).unwrap());
        for bytes in [&[][..], &[0xff], header_only, &trailing, &bad_op] {
            assert!(matches!(decode_frame(bytes), Err(Error::InvalidFrame(_))));
        }
        for len in 0..good.len() {
            assert!(decode_frame(&good[..len]).is_err());
        }
    }
}
