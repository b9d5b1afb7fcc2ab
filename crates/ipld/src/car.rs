//! CAR v1 (Content Addressable aRchive) streams.
//!
//! Layout: `varint(len(header)) header` then any number of sections
//! `varint(len(cid) + len(data)) cid data`. The header is the DAG-CBOR map
//! `{"roots": [cid, ...], "version": 1}`. Varints are unsigned LEB128, minimally encoded, at most
//! 9 bytes (63 bits).
//!
//! The reader is streaming and never trusts a length it has not checked against [`CarLimits`]:
//! memory stays bounded by the limits whatever the input, and malformed input is an
//! [`Error::Car`], never a panic. No async reader is provided: run [`CarReader`] on a blocking
//! thread.

use std::collections::BTreeMap;
use std::io::{BufReader, ErrorKind, Read, Write};

use crate::{Cid, Error, Ipld, Result, SHA2_256, from_cbor, sha256, to_cbor};

/// The longest CID a section may carry: version (1) + codec (9) + hash code (9) + digest size
/// (1) + digest (64) bytes, rounded up.
pub const MAX_CID_BYTES: usize = 96;

/// Longest varint accepted: 9 bytes, 63 bits.
const MAX_VARINT_BYTES: usize = 9;

/// How much of a declared length is allocated up front; the rest grows as bytes actually arrive,
/// so a large declared length over a short input costs little.
const INITIAL_ALLOC: usize = 64 * 1024;

fn car_err(msg: impl Into<String>) -> Error {
    Error::Car(msg.into())
}

/// A block: its CID and its bytes.
pub type Block = (Cid, Vec<u8>);

/// Size limits (and CID checking) for [`CarReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarLimits {
    /// Largest header (the DAG-CBOR bytes after the first varint).
    pub max_header_bytes: usize,
    /// Largest block payload (the section minus its CID). A section may be at most
    /// `max_block_bytes + MAX_CID_BYTES` long.
    pub max_block_bytes: usize,
    /// Check that every block hashes (sha2-256) to its CID. Blocks whose CID uses another hash
    /// function are then errors.
    pub verify_cids: bool,
}

impl Default for CarLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_block_bytes: 2 * 1024 * 1024,
            verify_cids: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Varints
// ---------------------------------------------------------------------------------------------

/// Appends the unsigned LEB128 encoding of `n` to `out`.
fn encode_varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads one byte; `None` at end of input.
fn read_byte<R: Read>(r: &mut R) -> Result<Option<u8>> {
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b[0])),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads a varint. `Ok(None)` only for end of input before its first byte; end of input inside it
/// is a truncation error. Overlong (non-minimal) and over-9-byte varints are errors.
fn read_varint<R: Read>(r: &mut R, what: &str) -> Result<Option<u64>> {
    let mut value = 0u64;
    for i in 0..MAX_VARINT_BYTES {
        let Some(byte) = read_byte(r)? else {
            return if i == 0 {
                Ok(None)
            } else {
                Err(car_err(format!("truncated {what} length")))
            };
        };
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(car_err(format!(
                    "{what} length varint is not minimally encoded"
                )));
            }
            return Ok(Some(value));
        }
    }
    Err(car_err(format!(
        "{what} length varint is longer than {MAX_VARINT_BYTES} bytes"
    )))
}

/// Reads exactly `len` bytes (already checked against a limit), allocating as they arrive.
fn read_body<R: Read>(r: &mut R, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len.min(INITIAL_ALLOC));
    r.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() != len {
        return Err(car_err(format!(
            "truncated {what}: declared {len} bytes, got {}",
            buf.len()
        )));
    }
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Writes a CAR v1 stream. Writes go straight to `W`; wrap it in a `BufWriter` if it is
/// unbuffered (a file, a socket).
pub struct CarWriter<W: Write> {
    writer: W,
    scratch: Vec<u8>,
}

impl<W: Write> CarWriter<W> {
    /// Writes the header with `roots` (may be empty).
    pub fn new(mut writer: W, roots: &[Cid]) -> Result<Self> {
        let header = encode_header(roots)?;
        let mut scratch = Vec::with_capacity(MAX_VARINT_BYTES + MAX_CID_BYTES);
        encode_varint(header.len() as u64, &mut scratch);
        writer.write_all(&scratch)?;
        writer.write_all(&header)?;
        Ok(Self { writer, scratch })
    }

    /// Writes one section. The CID is not checked against the bytes.
    pub fn write_block(&mut self, cid: &Cid, bytes: &[u8]) -> Result<()> {
        self.scratch.clear();
        encode_varint((cid.encoded_len() + bytes.len()) as u64, &mut self.scratch);
        cid.write_bytes(&mut self.scratch)
            .map_err(|e| Error::Cid(e.to_string()))?;
        self.writer.write_all(&self.scratch)?;
        self.writer.write_all(bytes)?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

fn encode_header(roots: &[Cid]) -> Result<Vec<u8>> {
    let mut header = BTreeMap::new();
    header.insert(
        "roots".to_owned(),
        Ipld::List(roots.iter().copied().map(Ipld::Link).collect()),
    );
    header.insert("version".to_owned(), Ipld::Integer(1));
    to_cbor(&Ipld::Map(header))
}

/// A whole CAR in memory.
pub fn encode_car(
    roots: &[Cid],
    blocks: impl IntoIterator<Item = (Cid, Vec<u8>)>,
) -> Result<Vec<u8>> {
    let mut w = CarWriter::new(Vec::new(), roots)?;
    for (cid, bytes) in blocks {
        w.write_block(&cid, &bytes)?;
    }
    w.finish()
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// Reads a CAR v1 stream block by block. The header is read (and checked) by the constructor.
///
/// After an error the reader is poisoned: [`CarReader::next_block`] keeps returning an error and
/// the iterator ends.
pub struct CarReader<R: Read> {
    reader: BufReader<R>,
    roots: Vec<Cid>,
    limits: CarLimits,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed,
    /// Failed, and the iterator has already yielded that error.
    FailedReported,
}

impl<R: Read> CarReader<R> {
    /// A reader with the default [`CarLimits`].
    pub fn new(reader: R) -> Result<Self> {
        Self::with_limits(reader, CarLimits::default())
    }

    pub fn with_limits(reader: R, limits: CarLimits) -> Result<Self> {
        let mut reader = BufReader::new(reader);
        let len =
            read_varint(&mut reader, "header")?.ok_or_else(|| car_err("empty input: no header"))?;
        if len == 0 {
            return Err(car_err("empty header"));
        }
        if len > limits.max_header_bytes as u64 {
            return Err(car_err(format!(
                "header of {len} bytes exceeds the limit of {}",
                limits.max_header_bytes
            )));
        }
        let bytes = read_body(&mut reader, len as usize, "header")?;
        let roots = decode_header(&bytes)?;
        Ok(Self {
            reader,
            roots,
            limits,
            state: State::Reading,
        })
    }

    /// The roots named by the header (possibly none).
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next block, or `None` at a clean end of input (between sections).
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        match self.state {
            State::Reading => {}
            State::Done => return Ok(None),
            State::Failed | State::FailedReported => {
                return Err(car_err("reader already failed"));
            }
        }
        match self.read_section() {
            Ok(Some(block)) => Ok(Some(block)),
            Ok(None) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn read_section(&mut self) -> Result<Option<Block>> {
        let Some(len) = read_varint(&mut self.reader, "section")? else {
            return Ok(None);
        };
        if len == 0 {
            return Err(car_err("empty section"));
        }
        let max = self.limits.max_block_bytes.saturating_add(MAX_CID_BYTES);
        if len > max as u64 {
            return Err(car_err(format!(
                "section of {len} bytes exceeds the limit of {max}"
            )));
        }
        let mut section = read_body(&mut self.reader, len as usize, "section")?;
        let (cid, data) = split_section(&section, &self.limits)?;
        let cid_len = section.len() - data.len();
        section.drain(..cid_len);
        Ok(Some((cid, section)))
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<Block>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.state {
            State::Done | State::FailedReported => None,
            State::Failed => {
                self.state = State::FailedReported;
                Some(Err(car_err("reader already failed")))
            }
            State::Reading => {
                let item = self.next_block().transpose();
                if matches!(item, Some(Err(_))) {
                    self.state = State::FailedReported;
                }
                item
            }
        }
    }
}

/// Splits a section into its CID and data, enforcing the block limit and (if asked) that the
/// data hashes to the CID.
fn split_section<'a>(section: &'a [u8], limits: &CarLimits) -> Result<(Cid, &'a [u8])> {
    let mut data: &[u8] = section;
    let cid = Cid::read_bytes(&mut data).map_err(|e| car_err(format!("bad block CID: {e}")))?;
    if data.len() > limits.max_block_bytes {
        return Err(car_err(format!(
            "block {cid} of {} bytes exceeds the limit of {}",
            data.len(),
            limits.max_block_bytes
        )));
    }
    if limits.verify_cids {
        if cid.hash().code() != SHA2_256 {
            return Err(car_err(format!(
                "block {cid} uses hash 0x{:x}, only sha2-256 can be verified",
                cid.hash().code()
            )));
        }
        if cid.hash().digest() != sha256(data) {
            return Err(car_err(format!("block {cid} does not match its CID")));
        }
    }
    Ok((cid, data))
}

/// A whole CAR held in one buffer, its blocks verified and indexed where they lie: no copy or
/// allocation per block. This is how a repository import reads its input: the CAR must be held
/// whole anyway to walk the tree, and this holds it once.
pub struct CarBuffer {
    bytes: Vec<u8>,
    roots: Vec<Cid>,
    index: crate::CidMap<(usize, usize)>,
}

impl CarBuffer {
    /// Parses and verifies `bytes` as a CAR v1 file under `limits`.
    pub fn parse(bytes: Vec<u8>, limits: CarLimits) -> Result<CarBuffer> {
        let mut rest: &[u8] = &bytes;
        let len =
            read_varint(&mut rest, "header")?.ok_or_else(|| car_err("empty input: no header"))?;
        if len == 0 {
            return Err(car_err("empty header"));
        }
        if len > limits.max_header_bytes as u64 {
            return Err(car_err(format!(
                "header of {len} bytes exceeds the limit of {}",
                limits.max_header_bytes
            )));
        }
        let header = rest
            .get(..len as usize)
            .ok_or_else(|| car_err("truncated header"))?;
        let roots = decode_header(header)?;
        rest = &rest[len as usize..];
        // Blocks of a repo average a few hundred bytes: size the index once.
        let mut index =
            crate::CidMap::with_capacity_and_hasher(bytes.len() / 256, Default::default());
        let max = limits.max_block_bytes.saturating_add(MAX_CID_BYTES) as u64;
        while let Some(len) = read_varint(&mut rest, "section")? {
            if len == 0 {
                return Err(car_err("empty section"));
            }
            if len > max {
                return Err(car_err(format!(
                    "section of {len} bytes exceeds the limit of {max}"
                )));
            }
            let section = rest
                .get(..len as usize)
                .ok_or_else(|| car_err("truncated section"))?;
            let (cid, data) = split_section(section, &limits)?;
            let start = bytes.len() - rest.len() + (section.len() - data.len());
            index
                .entry(crate::CidKey(cid))
                .or_insert((start, start + data.len()));
            rest = &rest[len as usize..];
        }
        Ok(CarBuffer {
            bytes,
            roots,
            index,
        })
    }

    /// Reads all of `reader` (at most `max_bytes`) and parses it.
    pub fn read<R: Read>(reader: R, max_bytes: u64, limits: CarLimits) -> Result<CarBuffer> {
        let mut bytes = Vec::new();
        reader
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max_bytes {
            return Err(car_err(format!(
                "CAR larger than the limit of {max_bytes} bytes"
            )));
        }
        Self::parse(bytes, limits)
    }

    /// The roots named by the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The data of block `cid`, if the CAR holds it.
    pub fn get(&self, cid: &Cid) -> Option<&[u8]> {
        self.index
            .get(&crate::CidKey(*cid))
            .map(|&(start, end)| &self.bytes[start..end])
    }

    /// The number of distinct blocks.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Size of the CAR in bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Checks a header: a map with `version: 1` and `roots`, a list of links. Other keys are ignored.
fn decode_header(bytes: &[u8]) -> Result<Vec<Cid>> {
    let header: Ipld = from_cbor(bytes).map_err(|e| car_err(format!("bad header: {e}")))?;
    let Ipld::Map(map) = header else {
        return Err(car_err("header is not a map"));
    };
    match map.get("version") {
        Some(Ipld::Integer(1)) => {}
        Some(v) => return Err(car_err(format!("unsupported CAR version {v:?}"))),
        None => return Err(car_err("header has no version")),
    }
    let Some(Ipld::List(roots)) = map.get("roots") else {
        return Err(car_err("header roots missing or not a list"));
    };
    roots
        .iter()
        .map(|r| match r {
            Ipld::Link(cid) => Ok(*cid),
            _ => Err(car_err("header root is not a link")),
        })
        .collect()
}

/// A whole CAR from memory, with the default [`CarLimits`]: the roots and every block in order.
pub fn decode_car(bytes: &[u8]) -> Result<(Vec<Cid>, Vec<Block>)> {
    let mut reader = CarReader::new(bytes)?;
    let roots = reader.roots().to_vec();
    let blocks = reader.by_ref().collect::<Result<Vec<_>>>()?;
    Ok((roots, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cid_for_cbor, cid_for_raw, encode_block};
    use proptest::prelude::*;

    fn sample() -> (Vec<Cid>, Vec<(Cid, Vec<u8>)>) {
        let (c1, b1) = encode_block(&Ipld::String("hello".into())).unwrap();
        let (c2, b2) = encode_block(&Ipld::List(vec![Ipld::Integer(1), Ipld::Link(c1)])).unwrap();
        let raw = b"raw blob bytes".to_vec();
        let c3 = cid_for_raw(&raw);
        (vec![c2], vec![(c1, b1), (c2, b2), (c3, raw)])
    }

    fn sample_car() -> Vec<u8> {
        let (roots, blocks) = sample();
        encode_car(&roots, blocks).unwrap()
    }

    fn varint(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_varint(n, &mut v);
        v
    }

    fn header_bytes(roots: &[Cid]) -> Vec<u8> {
        let h = encode_header(roots).unwrap();
        let mut out = varint(h.len() as u64);
        out.extend_from_slice(&h);
        out
    }

    #[test]
    fn round_trip() {
        let (roots, blocks) = sample();
        let car = encode_car(&roots, blocks.clone()).unwrap();
        assert_eq!(decode_car(&car).unwrap(), (roots.clone(), blocks.clone()));

        let mut reader = CarReader::new(&car[..]).unwrap();
        assert_eq!(reader.roots(), &roots[..]);
        for expected in &blocks {
            assert_eq!(reader.next_block().unwrap().as_ref(), Some(expected));
        }
        assert!(reader.next_block().unwrap().is_none());
        assert!(reader.next_block().unwrap().is_none());
    }

    #[test]
    fn header_is_canonical_dag_cbor() {
        let root = cid_for_cbor(b"x");
        let h = encode_header(&[root]).unwrap();
        // {"roots": [tag 42 ...], "version": 1}: map(2), "roots" first (shorter key).
        assert_eq!(&h[..7], &[0xa2, 0x65, b'r', b'o', b'o', b't', b's']);
        assert_eq!(
            &h[h.len() - 9..],
            &[0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x01]
        );
    }

    #[test]
    fn varints() {
        for n in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            (1 << 63) - 1,
        ] {
            let bytes = varint(n);
            assert!(bytes.len() <= MAX_VARINT_BYTES);
            assert_eq!(read_varint(&mut &bytes[..], "t").unwrap(), Some(n));
        }
        assert_eq!(read_varint(&mut &[][..], "t").unwrap(), None);
        // Overlong: 1 written in two bytes.
        assert!(read_varint(&mut &[0x81, 0x00][..], "t").is_err());
        // Ten bytes / continuation on the ninth.
        assert!(read_varint(&mut &[0xff; 10][..], "t").is_err());
        assert!(read_varint(&mut &[0xff; 9][..], "t").is_err());
        // Truncated mid-varint.
        assert!(read_varint(&mut &[0x80][..], "t").is_err());
    }

    #[test]
    fn empty_roots_allowed() {
        let car = encode_car(&[], Vec::new()).unwrap();
        let (roots, blocks) = decode_car(&car).unwrap();
        assert!(roots.is_empty() && blocks.is_empty());
    }

    #[test]
    fn truncated_at_every_offset() {
        let car = sample_car();
        // Section boundaries: a cut exactly there is a clean (shorter) CAR.
        let mut boundaries = vec![header_bytes(&sample().0).len()];
        for (cid, data) in sample().1 {
            let len = cid.to_bytes().len() + data.len();
            boundaries.push(boundaries.last().unwrap() + varint(len as u64).len() + len);
        }
        for cut in 0..car.len() {
            let result = decode_car(&car[..cut]);
            if boundaries.contains(&cut) {
                assert!(result.is_ok(), "cut at boundary {cut}");
            } else {
                let err = result.expect_err(&format!("cut at {cut}"));
                assert!(
                    err.to_string().contains("truncated") || cut == 0,
                    "{cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn oversized_varint() {
        let mut car = header_bytes(&[]);
        car.extend_from_slice(&[0xff; 12]);
        assert!(decode_car(&car).is_err());
        assert!(CarReader::new(&[0xffu8; 12][..]).is_err());
    }

    #[test]
    fn huge_declared_length_fails_before_reading() {
        // Section length 2^62 with a four-byte body: refused by the limit check.
        let mut car = header_bytes(&[]);
        car.extend_from_slice(&varint(1 << 62));
        car.extend_from_slice(b"tiny");
        let err = decode_car(&car).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        // Same for the header.
        let mut car = varint(u32::MAX as u64);
        car.extend_from_slice(b"tiny");
        let err = decode_car(&car).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        // A length within the limit but past the input is truncation, without a full-size
        // allocation up front.
        let mut car = header_bytes(&[]);
        car.extend_from_slice(&varint(2 * 1024 * 1024));
        car.extend_from_slice(b"tiny");
        let err = decode_car(&car).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn limits_are_configurable() {
        let car = sample_car();
        let tight = CarLimits {
            max_block_bytes: 4,
            ..CarLimits::default()
        };
        let mut r = CarReader::with_limits(&car[..], tight).unwrap();
        assert!(r.next_block().is_err());
        assert!(r.next_block().is_err(), "poisoned after an error");
        let tiny_header = CarLimits {
            max_header_bytes: 8,
            ..CarLimits::default()
        };
        assert!(CarReader::with_limits(&car[..], tiny_header).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        for bytes in [
            &b""[..],
            b"\x00",
            b"\x05hello",
            b"garbage garbage garbage",
            &[
                0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02,
            ][..],
        ] {
            assert!(decode_car(bytes).is_err(), "{bytes:?}");
        }
        // Header shapes.
        let bad_headers = [
            Ipld::Integer(1),
            Ipld::Map(
                [
                    ("version".into(), Ipld::Integer(2)),
                    ("roots".into(), Ipld::List(vec![])),
                ]
                .into(),
            ),
            Ipld::Map([("version".into(), Ipld::Integer(1))].into()),
            Ipld::Map(
                [
                    ("version".into(), Ipld::Integer(1)),
                    ("roots".into(), Ipld::List(vec![Ipld::Null])),
                ]
                .into(),
            ),
        ];
        for h in bad_headers {
            let h = to_cbor(&h).unwrap();
            let mut car = varint(h.len() as u64);
            car.extend_from_slice(&h);
            assert!(decode_car(&car).is_err(), "{h:?}");
        }
        // A section whose bytes do not start with a CID.
        let mut car = header_bytes(&[]);
        car.extend_from_slice(&varint(5));
        car.extend_from_slice(&[0x07, 1, 2, 3, 4]);
        assert!(decode_car(&car).is_err());
        // An empty section.
        let mut car = header_bytes(&[]);
        car.push(0);
        assert!(decode_car(&car).is_err());
    }

    #[test]
    fn wrong_digest_is_rejected_unless_unverified() {
        let cid = cid_for_raw(b"the real bytes");
        let car = encode_car(&[cid], [(cid, b"other bytes".to_vec())]).unwrap();
        let err = decode_car(&car).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");

        let lax = CarLimits {
            verify_cids: false,
            ..CarLimits::default()
        };
        let blocks: Vec<_> = CarReader::with_limits(&car[..], lax)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(blocks, vec![(cid, b"other bytes".to_vec())]);
    }

    #[test]
    fn iterator_ends_after_error() {
        let mut car = sample_car();
        car.truncate(car.len() - 1);
        let mut r = CarReader::new(&car[..]).unwrap();
        let items: Vec<_> = r.by_ref().collect();
        assert!(items.last().unwrap().is_err());
        assert!(items[..items.len() - 1].iter().all(|i| i.is_ok()));
        assert!(r.next().is_none());
    }

    #[test]
    fn buffer_matches_the_streaming_reader() {
        let car = sample_car();
        let (roots, blocks) = decode_car(&car).unwrap();
        let buffer = CarBuffer::parse(car.clone(), CarLimits::default()).unwrap();
        assert_eq!(buffer.roots(), roots.as_slice());
        assert_eq!(buffer.len(), blocks.len());
        for (cid, data) in &blocks {
            assert_eq!(buffer.get(cid), Some(data.as_slice()));
        }
        // Cut anywhere: an error, or (at a section boundary) a valid shorter CAR.
        for cut in 0..car.len() {
            let streamed = decode_car(&car[..cut]);
            let buffered = CarBuffer::parse(car[..cut].to_vec(), CarLimits::default());
            assert_eq!(streamed.is_ok(), buffered.is_ok(), "cut at {cut}");
        }
        assert!(
            CarBuffer::read(car.as_slice(), car.len() as u64 - 1, CarLimits::default()).is_err()
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = CarBuffer::parse(bytes.clone(), CarLimits::default());
            let _ = decode_car(&bytes);
            // Also behind a valid header, so section parsing sees the random bytes.
            let mut car = header_bytes(&[]);
            car.extend_from_slice(&bytes);
            let _ = decode_car(&car);
        }

        #[test]
        fn mutated_car_never_panics(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut car = sample_car();
            let i = pos.index(car.len());
            car[i] = byte;
            let _ = decode_car(&car);
        }
    }
}
