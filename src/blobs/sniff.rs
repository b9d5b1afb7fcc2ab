//! What a blob is, from its first bytes: the media types the reference PDS detects (it uses the
//! `file-type` package and prefers what it finds over the client's `Content-Type`) for the
//! formats people actually upload, with the same MIME names it reports.
//!
//! Only unambiguous signatures are matched; anything else is `None` and the declared type stands.

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_LEN: usize = 4100;

/// The media type of a blob whose first bytes are `head` (up to [`SNIFF_LEN`] of them).
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, sig: &[u8]| head.get(offset..offset + sig.len()) == Some(sig);

    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some(png_kind(head));
    }
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if at(0, b"GIF8") {
        return Some("image/gif");
    }
    if at(0, b"RIFF") {
        if at(8, b"WEBP") {
            return Some("image/webp");
        }
        if at(8, b"WAVE") {
            return Some("audio/vnd.wave");
        }
        if at(8, b"AVI ") {
            return Some("video/vnd.avi");
        }
        return None;
    }
    // ISO base media (MP4, QuickTime, HEIF, AVIF): a box `ftyp` at offset 4, brand printable.
    if at(4, b"ftyp") && head.get(8).is_some_and(|b| b & 0x60 != 0) {
        return Some(ftyp_kind(head));
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return ebml_kind(head);
    }
    if at(0, b"OggS") {
        if at(28, b"OpusHead") {
            return Some("audio/opus");
        }
        if at(28, b"\x80theora") || at(28, b"\x01video\x00") {
            return Some("video/ogg");
        }
        return Some("audio/ogg");
    }
    if at(0, b"fLaC") {
        return Some("audio/x-flac");
    }
    if at(0, b"ID3") {
        return Some("audio/mpeg");
    }
    if at(0, &[0xFF, 0x0A]) || at(0, b"\x00\x00\x00\x0cJXL \r\n\x87\n") {
        return Some("image/jxl");
    }
    if at(0, b"II\x2a\x00") || at(0, b"MM\x00\x2a") {
        return Some("image/tiff");
    }
    if at(0, b"BM") && head.len() >= 14 {
        return Some("image/bmp");
    }
    if at(0, &[0x00, 0x00, 0x01, 0x00]) && head.len() >= 6 {
        return Some("image/x-icon");
    }
    if at(0, b"%PDF") {
        return Some("application/pdf");
    }
    if at(0, &[0x1F, 0x8B, 0x08]) {
        return Some("application/gzip");
    }
    if at(0, b"PK\x03\x04") {
        return Some("application/zip");
    }
    None
}

/// PNG or animated PNG: an `acTL` chunk before the first `IDAT` makes it APNG.
fn png_kind(head: &[u8]) -> &'static str {
    let mut pos = 8;
    while let Some(header) = head.get(pos..pos + 8) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        match &header[4..8] {
            b"acTL" => return "image/apng",
            b"IDAT" => break,
            _ => {}
        }
        pos = match pos.checked_add(12).and_then(|p| p.checked_add(len)) {
            Some(next) => next,
            None => break,
        };
    }
    "image/png"
}

/// The major brand of an `ftyp` box, named as `file-type` names it.
fn ftyp_kind(head: &[u8]) -> &'static str {
    let brand: String = head
        .get(8..12)
        .unwrap_or_default()
        .iter()
        .map(|&b| if b == 0 { ' ' } else { b as char })
        .collect();
    match brand.trim() {
        "avif" | "avis" => "image/avif",
        "mif1" => "image/heif",
        "msf1" => "image/heif-sequence",
        "heic" | "heix" => "image/heic",
        "hevc" | "hevx" => "image/heic-sequence",
        "qt" => "video/quicktime",
        "M4V" | "M4VH" | "M4VP" => "video/x-m4v",
        "M4P" | "F4V" | "F4P" => "video/mp4",
        "M4A" => "audio/x-m4a",
        "M4B" | "F4A" | "F4B" => "audio/mp4",
        "crx" => "image/x-canon-cr3",
        "3g2" => "video/3gpp2",
        b if b.starts_with("3g") => "video/3gpp",
        _ => "video/mp4",
    }
}

/// WebM or Matroska, from the EBML `DocType` element (id 0x4282) near the start.
fn ebml_kind(head: &[u8]) -> Option<&'static str> {
    let window = &head[..head.len().min(4096)];
    let pos = window.windows(2).position(|w| w == [0x42, 0x82])?;
    let rest = &window[pos + 2..];
    // The element's size is a variable-length integer; the doc type follows it.
    let first = *rest.first()?;
    let width = first.leading_zeros() as usize + 1;
    let doc_type = rest.get(width..)?;
    if doc_type.starts_with(b"webm") {
        Some("video/webm")
    } else if doc_type.starts_with(b"matroska") {
        Some("video/x-matroska")
    } else {
        None
    }
}

/// The media type of a `Content-Type` header value: its essence (`type/subtype`) lowercased,
/// parameters dropped; `None` if it is not one, or is a wildcard.
pub fn declared_type(header: &str) -> Option<String> {
    let essence = header.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(kind) && token(sub)).then_some(essence)
}

/// The type recorded for an upload, as the reference decides it: what the content turned out
/// to be if it is recognised, else what the client declared, else `application/octet-stream`.
pub fn choose(declared: Option<&str>, sniffed: Option<&'static str>) -> String {
    sniffed
        .map(str::to_owned)
        .or_else(|| declared.map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_formats() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", Some("image/png")),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF", Some("image/jpeg")),
            (b"GIF89a\x01\x00", Some("image/gif")),
            (b"RIFF\x00\x00\x00\x00WEBPVP8 ", Some("image/webp")),
            (
                b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00",
                Some("video/mp4"),
            ),
            (
                b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00",
                Some("video/quicktime"),
            ),
            (
                b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
                Some("image/heic"),
            ),
            (
                b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00",
                Some("image/avif"),
            ),
            (
                b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
                Some("video/webm"),
            ),
            (b"hello, world", None),
            (b"", None),
            (b"\x89PN", None),
        ];
        for (head, want) in cases {
            assert_eq!(sniff(head), *want, "{head:?}");
        }
    }

    #[test]
    fn animated_png() {
        let mut apng = b"\x89PNG\r\n\x1a\n".to_vec();
        apng.extend_from_slice(&13u32.to_be_bytes());
        apng.extend_from_slice(b"IHDR");
        apng.extend_from_slice(&[0; 13 + 4]);
        apng.extend_from_slice(&8u32.to_be_bytes());
        apng.extend_from_slice(b"acTL");
        assert_eq!(sniff(&apng), Some("image/apng"));
    }

    #[test]
    fn declared_types() {
        assert_eq!(declared_type("image/PNG"), Some("image/png".into()));
        assert_eq!(
            declared_type("text/plain; charset=utf-8"),
            Some("text/plain".into())
        );
        assert_eq!(declared_type("nonsense"), None);
        assert_eq!(declared_type("*/*"), None);
        assert_eq!(declared_type(""), None);
        assert_eq!(choose(Some("image/png"), Some("image/jpeg")), "image/jpeg");
        assert_eq!(choose(Some("text/plain"), None), "text/plain");
        assert_eq!(choose(None, None), "application/octet-stream");
    }
}
