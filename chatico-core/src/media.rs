//! Content sniffing and image header checks for uploads: no I/O, no decoding.
//!
//! The gateway calls this on the bytes of an upload (after it has enforced the size limit
//! while streaming) and never trusts the client's `Content-Type` or file name:
//!
//! - [`sniff`] looks at the magic bytes only. JPEG, PNG, GIF and WebP are the allowlisted
//!   image types; anything else (HTML, SVG, PDF, unknown...) is [`Sniffed::Other`] and is
//!   served as `application/octet-stream` with `Content-Disposition: attachment`.
//! - [`inspect_image`] reads the dimensions from the header (PNG `IHDR`, GIF logical screen
//!   and frame descriptors, JPEG `SOFn`, WebP `VP8 `/`VP8L`/`VP8X`), refuses them above the
//!   configured [`ImageLimits`] before anything else looks at the file (no decompression
//!   bombs), then walks the container structure — PNG chunks, JPEG segments up to `EOI`, GIF
//!   blocks up to the trailer, WebP RIFF chunks — without decompressing anything, so that a
//!   truncated file is refused too.
//!
//! The parsers are hand-written (a few hundred lines, no dependency, wasm-safe) rather than
//! taken from `imagesize`, because that crate reads the header only and says nothing about
//! truncation or about GIF frames larger than the logical screen.

use crate::error::{Error, Result};

/// The type served for anything that is not an allowlisted image.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The allowlisted image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (`image/jpeg`).
    Jpeg,
    /// PNG (`image/png`).
    Png,
    /// GIF, animated or not (`image/gif`).
    Gif,
    /// WebP (`image/webp`).
    WebP,
}

impl ImageFormat {
    /// The MIME type served for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::WebP => "image/webp",
        }
    }

    /// A conventional file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::WebP => "webp",
        }
    }

    /// The format whose MIME type is `content_type`, if it is an allowlisted one.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Gif, ImageFormat::WebP]
            .into_iter()
            .find(|f| f.content_type().eq_ignore_ascii_case(content_type.trim()))
    }

    fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Gif => "GIF",
            ImageFormat::WebP => "WebP",
        }
    }
}

/// What the magic bytes say a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Starts like an allowlisted image (the rest is checked by [`inspect_image`]).
    Image(ImageFormat),
    /// Anything else: never served inline.
    Other,
}

impl Sniffed {
    /// The type to store and serve: the image's MIME type, or [`OCTET_STREAM`].
    pub fn content_type(self) -> &'static str {
        match self {
            Sniffed::Image(f) => f.content_type(),
            Sniffed::Other => OCTET_STREAM,
        }
    }
}

/// Looks at the first bytes only. Needs at most 12 bytes to decide.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Sniffed::Image(ImageFormat::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        Sniffed::Image(ImageFormat::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Sniffed::Image(ImageFormat::Gif)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Sniffed::Image(ImageFormat::WebP)
    } else {
        Sniffed::Other
    }
}

/// Bounds on image dimensions, checked from the header before any decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest width accepted, in pixels.
    pub max_width: u32,
    /// Largest height accepted, in pixels.
    pub max_height: u32,
    /// Bound on `width × height` (of the image and of every GIF frame).
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    /// 16384 px a side and 50 megapixels: any phone photo, not a decompression bomb.
    fn default() -> Self {
        ImageLimits {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 50_000_000,
        }
    }
}

impl ImageLimits {
    /// `Ok` when `width × height` fits, `TooLarge` otherwise; zero sizes are invalid input.
    pub fn check(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(FIELD, "image declares a zero width or height"));
        }
        if width > self.max_width {
            return Err(Error::too_large(
                format!("image width ({width} px)"),
                u64::from(self.max_width),
            ));
        }
        if height > self.max_height {
            return Err(Error::too_large(
                format!("image height ({height} px)"),
                u64::from(self.max_height),
            ));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(Error::too_large(format!("image area ({pixels} px)"), self.max_pixels));
        }
        Ok(())
    }
}

/// An accepted image: its format and declared dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format, from the magic bytes.
    pub format: ImageFormat,
    /// Width in pixels, from the header.
    pub width: u32,
    /// Height in pixels, from the header.
    pub height: u32,
}

impl ImageInfo {
    /// The MIME type served for the image.
    pub fn content_type(&self) -> &'static str {
        self.format.content_type()
    }
}

/// The field named in errors: the uploaded file.
const FIELD: &str = "file";

/// Checks that `bytes` is a complete allowlisted image whose dimensions fit `limits`.
///
/// Errors: `invalid_input` (field `file`) for anything that is not a JPEG/PNG/GIF/WebP, for
/// a truncated or malformed header or container, and for zero dimensions; `too_large` for
/// dimensions over `limits` (checked from the header, before the rest of the file is read).
pub fn inspect_image(bytes: &[u8], limits: &ImageLimits) -> Result<ImageInfo> {
    let Sniffed::Image(format) = sniff(bytes) else {
        return Err(Error::invalid(FIELD, "not a JPEG, PNG, GIF or WebP image"));
    };
    let (width, height) = header_dimensions(bytes, format)?;
    limits.check(width, height)?;
    check_structure(bytes, format, limits)?;
    Ok(ImageInfo { format, width, height })
}

/// Reads the declared dimensions from the header only (no bound check, no structure walk).
pub fn header_dimensions(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32)> {
    let dims = match format {
        ImageFormat::Png => png_dimensions(bytes),
        ImageFormat::Gif => gif_dimensions(bytes),
        ImageFormat::Jpeg => jpeg_dimensions(bytes),
        ImageFormat::WebP => webp_dimensions(bytes),
    };
    dims.ok_or_else(|| corrupt(format))
}

fn check_structure(bytes: &[u8], format: ImageFormat, limits: &ImageLimits) -> Result<()> {
    match format {
        ImageFormat::Png => png_complete(bytes).ok_or_else(|| corrupt(format)),
        ImageFormat::Gif => gif_complete(bytes, limits),
        ImageFormat::Jpeg => jpeg_complete(bytes).ok_or_else(|| corrupt(format)),
        ImageFormat::WebP => webp_complete(bytes).ok_or_else(|| corrupt(format)),
    }
}

fn corrupt(format: ImageFormat) -> Error {
    Error::invalid(FIELD, format!("truncated or malformed {} image", format.name()))
}

// ----- little readers: `None` means "past the end" -----

fn slice(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}
fn byte(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}
fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = slice(b, at, 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}
fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = slice(b, at, 2)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}
fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = slice(b, at, 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}
fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = slice(b, at, 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn le_u24(b: &[u8], at: usize) -> Option<u32> {
    let s = slice(b, at, 3)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], 0]))
}

// ----- PNG -----

const PNG_SIGNATURE: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// IHDR must be the first chunk, 13 bytes long: width and height are big-endian u32.
fn png_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    if be_u32(b, 8)? != 13 || slice(b, 12, 4)? != b"IHDR" {
        return None;
    }
    // The whole IHDR chunk (data + CRC) must be there.
    slice(b, 16, 13 + 4)?;
    let (w, h) = (be_u32(b, 16)?, be_u32(b, 20)?);
    // PNG caps both at 2^31 - 1.
    (w <= i32::MAX as u32 && h <= i32::MAX as u32).then_some((w, h))
}

/// Walks the chunks (length, type, data, CRC) up to IEND; at least one IDAT is required.
fn png_complete(b: &[u8]) -> Option<()> {
    let mut at = PNG_SIGNATURE.len();
    let mut seen_idat = false;
    loop {
        let len = be_u32(b, at)?;
        if len > i32::MAX as u32 {
            return None;
        }
        let kind = slice(b, at + 4, 4)?;
        let end = (at + 8).checked_add(len as usize)?.checked_add(4)?;
        if end > b.len() {
            return None;
        }
        match kind {
            b"IDAT" => seen_idat = true,
            b"IEND" => return seen_idat.then_some(()),
            _ => {}
        }
        at = end;
    }
}

// ----- GIF -----

fn gif_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    // Logical screen descriptor: width, height (LE u16), packed, background, aspect.
    slice(b, 6, 7)?;
    Some((u32::from(le_u16(b, 6)?), u32::from(le_u16(b, 8)?)))
}

/// Skips a colour table announced by `packed` (bit 7 set, size 3 × 2^(n+1)).
fn gif_color_table(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 * (1usize << ((packed & 0x07) + 1))
    } else {
        0
    }
}

/// Skips data sub-blocks (size byte, data) up to the zero-length terminator.
fn gif_sub_blocks(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let size = usize::from(byte(b, at)?);
        at += 1;
        if size == 0 {
            return Some(at);
        }
        at = at.checked_add(size)?;
        if at > b.len() {
            return None;
        }
    }
}

/// Walks the blocks up to the trailer; every frame's size is checked against `limits` too
/// (a decoder allocates per frame, and a frame may claim more than the logical screen).
fn gif_complete(b: &[u8], limits: &ImageLimits) -> Result<()> {
    let bad = || corrupt(ImageFormat::Gif);
    let packed = byte(b, 10).ok_or_else(bad)?;
    let mut at = 13 + gif_color_table(packed);
    let mut frames = 0u32;
    loop {
        match byte(b, at).ok_or_else(bad)? {
            // Trailer.
            0x3B => return if frames > 0 { Ok(()) } else { Err(bad()) },
            // Extension: label, then sub-blocks.
            0x21 => {
                byte(b, at + 1).ok_or_else(bad)?;
                at = gif_sub_blocks(b, at + 2).ok_or_else(bad)?;
            }
            // Image descriptor: left, top, width, height (LE u16), packed.
            0x2C => {
                let d = slice(b, at + 1, 9).ok_or_else(bad)?;
                let left = u32::from(u16::from_le_bytes([d[0], d[1]]));
                let top = u32::from(u16::from_le_bytes([d[2], d[3]]));
                let w = u32::from(u16::from_le_bytes([d[4], d[5]]));
                let h = u32::from(u16::from_le_bytes([d[6], d[7]]));
                limits.check(left + w, top + h)?;
                at += 10 + gif_color_table(d[8]);
                // LZW minimum code size, then the image data sub-blocks.
                byte(b, at).ok_or_else(bad)?;
                at = gif_sub_blocks(b, at + 1).ok_or_else(bad)?;
                frames += 1;
            }
            _ => return Err(bad()),
        }
    }
}

// ----- JPEG -----

/// Start-of-frame markers carry the dimensions: C0–CF except DHT (C4), JPG (C8), DAC (CC).
fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Markers without a length field.
fn is_standalone(marker: u8) -> bool {
    marker == 0x01 || (0xD0..=0xD7).contains(&marker)
}

/// Reads the marker at `at` (skipping fill bytes); returns (marker, offset after it).
fn jpeg_marker(b: &[u8], mut at: usize) -> Option<(u8, usize)> {
    if byte(b, at)? != 0xFF {
        return None;
    }
    while byte(b, at)? == 0xFF {
        at += 1;
    }
    Some((byte(b, at)?, at + 1))
}

/// Walks the segments after SOI up to the first SOFn.
fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        let (marker, next) = jpeg_marker(b, at)?;
        if is_standalone(marker) {
            at = next;
            continue;
        }
        // SOS, EOI or a second SOI before any SOF: no frame header.
        if (0xD8..=0xDA).contains(&marker) {
            return None;
        }
        let len = usize::from(be_u16(b, next)?);
        if len < 2 {
            return None;
        }
        if is_sof(marker) {
            // Precision (1), height (2), width (2). Height 0 (defined later by DNL) is refused.
            let h = be_u16(b, next + 3)?;
            let w = be_u16(b, next + 5)?;
            return Some((u32::from(w), u32::from(h)));
        }
        at = next + len;
    }
}

/// Walks every segment and scan up to EOI. In entropy-coded data a 0xFF byte is followed by
/// 0x00 (stuffing) or a restart marker, so the first other marker ends the scan.
fn jpeg_complete(b: &[u8]) -> Option<()> {
    let mut at = 2;
    let mut seen_sof = false;
    loop {
        let (marker, next) = jpeg_marker(b, at)?;
        match marker {
            0xD9 => return None, // EOI before any scan
            0xD8 => return None,
            m if is_standalone(m) => {
                at = next;
                continue;
            }
            _ => {}
        }
        let len = usize::from(be_u16(b, next)?);
        if len < 2 {
            return None;
        }
        let end = next + len;
        if end > b.len() {
            return None;
        }
        seen_sof |= is_sof(marker);
        if marker != 0xDA {
            at = end;
            continue;
        }
        if !seen_sof {
            return None;
        }
        // Entropy-coded data after the SOS header.
        let mut i = end;
        loop {
            let pos = i + b.get(i..)?.iter().position(|&x| x == 0xFF)?;
            let following = byte(b, pos + 1)?;
            match following {
                0x00 | 0xD0..=0xD7 | 0xFF => i = pos + 1,
                0xD9 => return Some(()),
                _ => {
                    at = pos;
                    break;
                }
            }
        }
    }
}

// ----- WebP -----

/// The first chunk after `RIFF size WEBP` tells the bitstream: lossy `VP8 `, lossless
/// `VP8L`, or extended `VP8X` (canvas size).
fn webp_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let kind = slice(b, 12, 4)?;
    let data = 20;
    match kind {
        b"VP8 " => {
            // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height.
            if slice(b, data + 3, 3)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let w = le_u16(b, data + 6)? & 0x3FFF;
            let h = le_u16(b, data + 8)? & 0x3FFF;
            Some((u32::from(w), u32::from(h)))
        }
        b"VP8L" => {
            // Signature 0x2F, then 14 bits width-1 and 14 bits height-1.
            if byte(b, data)? != 0x2F {
                return None;
            }
            let bits = le_u32(b, data + 1)?;
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => {
            // Flags (1), reserved (3), canvas width-1 (24 bits), canvas height-1 (24 bits).
            Some((le_u24(b, data + 4)? + 1, le_u24(b, data + 7)? + 1))
        }
        _ => None,
    }
}

/// The RIFF size must be covered by the file, and the chunks must tile it exactly.
fn webp_complete(b: &[u8]) -> Option<()> {
    let riff = le_u32(b, 4)? as usize;
    let end = riff.checked_add(8)?;
    if riff < 4 || end > b.len() {
        return None;
    }
    let mut at = 12;
    let mut chunks = 0;
    while at < end {
        let size = le_u32(b, at + 4)? as usize;
        // Chunks are padded to an even size.
        at = (at + 8).checked_add(size)?.checked_add(size & 1)?;
        if at > end {
            return None;
        }
        chunks += 1;
    }
    (chunks > 0).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    // Real files written by Pillow (see testdata/media/README.md).
    const PNG: &[u8] = include_bytes!("../testdata/media/rgb-7x5.png");
    const JPEG: &[u8] = include_bytes!("../testdata/media/baseline-33x17.jpg");
    const JPEG_PROGRESSIVE: &[u8] = include_bytes!("../testdata/media/progressive-40x24.jpg");
    const JPEG_EXIF: &[u8] = include_bytes!("../testdata/media/exif-21x13.jpg");
    const GIF: &[u8] = include_bytes!("../testdata/media/static-9x6.gif");
    const GIF_ANIMATED: &[u8] = include_bytes!("../testdata/media/anim-12x10.gif");
    const WEBP_LOSSY: &[u8] = include_bytes!("../testdata/media/lossy-19x11.webp");
    const WEBP_LOSSLESS: &[u8] = include_bytes!("../testdata/media/lossless-15x8.webp");
    const WEBP_ALPHA: &[u8] = include_bytes!("../testdata/media/alpha-23x14.webp");
    const WEBP_ANIMATED: &[u8] = include_bytes!("../testdata/media/anim-12x10.webp");

    fn all_fixtures() -> Vec<(&'static str, &'static [u8], ImageFormat, u32, u32)> {
        vec![
            ("png", PNG, ImageFormat::Png, 7, 5),
            ("jpeg", JPEG, ImageFormat::Jpeg, 33, 17),
            ("progressive jpeg", JPEG_PROGRESSIVE, ImageFormat::Jpeg, 40, 24),
            ("jpeg with exif", JPEG_EXIF, ImageFormat::Jpeg, 21, 13),
            ("gif", GIF, ImageFormat::Gif, 9, 6),
            ("animated gif", GIF_ANIMATED, ImageFormat::Gif, 12, 10),
            ("lossy webp", WEBP_LOSSY, ImageFormat::WebP, 19, 11),
            ("lossless webp", WEBP_LOSSLESS, ImageFormat::WebP, 15, 8),
            ("webp with alpha (VP8X)", WEBP_ALPHA, ImageFormat::WebP, 23, 14),
            ("animated webp", WEBP_ANIMATED, ImageFormat::WebP, 12, 10),
        ]
    }

    fn code(r: Result<ImageInfo>) -> ErrorCode {
        r.expect_err("should be refused").code()
    }

    /// A PNG signature plus an IHDR declaring `w`×`h` (CRC not checked by us; zeros).
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut v = PNG_SIGNATURE.to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0]);
        v.extend_from_slice(&[0; 4]);
        v
    }

    #[test]
    fn real_images_are_accepted_with_their_dimensions() {
        for (name, bytes, format, w, h) in all_fixtures() {
            assert_eq!(sniff(bytes), Sniffed::Image(format), "{name}");
            let info = inspect_image(bytes, &ImageLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                info,
                ImageInfo {
                    format,
                    width: w,
                    height: h
                },
                "{name}"
            );
        }
    }

    #[test]
    fn every_truncation_of_a_real_image_is_refused_as_invalid_input() {
        for (name, bytes, _, _, _) in all_fixtures() {
            for cut in 0..bytes.len() {
                let r = inspect_image(&bytes[..cut], &ImageLimits::default());
                // JPEG: a cut just after EOI's 0xFF... is still before EOI, so every cut fails.
                assert_eq!(
                    code(r),
                    ErrorCode::InvalidInput,
                    "{name} cut at {cut} of {}",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn a_png_declaring_60000_by_60000_is_too_large_before_anything_else() {
        // Only the header: the bound is checked before the (missing) data is looked at.
        let header = png_header(60_000, 60_000);
        let err = inspect_image(&header, &ImageLimits::default()).expect_err("refused");
        assert_eq!(err.code(), ErrorCode::TooLarge, "{err}");
        assert_eq!(header_dimensions(&header, ImageFormat::Png), Ok((60_000, 60_000)));
        // The same header with an image small enough passes the bound and then fails the
        // structure walk (there is no IDAT), proving the order of the checks.
        let small = png_header(100, 100);
        assert_eq!(
            code(inspect_image(&small, &ImageLimits::default())),
            ErrorCode::InvalidInput
        );
    }

    #[test]
    fn limits_are_configurable_per_side_and_per_area() {
        let tight = ImageLimits {
            max_width: 32,
            max_height: 20,
            max_pixels: 500,
        };
        assert!(inspect_image(PNG, &tight).is_ok()); // 7×5
        assert_eq!(code(inspect_image(JPEG, &tight)), ErrorCode::TooLarge); // width 33
        assert_eq!(code(inspect_image(JPEG_PROGRESSIVE, &tight)), ErrorCode::TooLarge); // 40×24
        let area = ImageLimits {
            max_width: 1000,
            max_height: 1000,
            max_pixels: 19 * 11 - 1,
        };
        assert_eq!(code(inspect_image(WEBP_LOSSY, &area)), ErrorCode::TooLarge);
        assert_eq!(tight.check(0, 5).expect_err("zero").code(), ErrorCode::InvalidInput);
    }

    #[test]
    fn html_or_svg_named_png_is_not_an_image() {
        let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        for bytes in [&html[..], &svg[..], b"", b"%PDF-1.7\n", b"RIFF\0\0\0\0WAVEfmt "] {
            assert_eq!(sniff(bytes), Sniffed::Other);
            assert_eq!(sniff(bytes).content_type(), OCTET_STREAM);
            assert_eq!(
                code(inspect_image(bytes, &ImageLimits::default())),
                ErrorCode::InvalidInput
            );
        }
    }

    #[test]
    fn gif_frames_larger_than_the_screen_are_bounded_too() {
        // Logical screen 1×1, one frame declaring 60000×60000.
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[1, 0, 1, 0, 0, 0, 0]);
        gif.push(0x2C);
        gif.extend_from_slice(&[0, 0, 0, 0]);
        gif.extend_from_slice(&60_000u16.to_le_bytes());
        gif.extend_from_slice(&60_000u16.to_le_bytes());
        gif.push(0);
        gif.extend_from_slice(&[2, 1, 0, 0, 0x3B]);
        assert_eq!(code(inspect_image(&gif, &ImageLimits::default())), ErrorCode::TooLarge);
    }

    #[test]
    fn webp_and_jpeg_headers_declaring_huge_sizes_are_too_large() {
        // VP8X canvas 16777216 × 16777216 (24-bit fields at their maximum).
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&22u32.to_le_bytes());
        webp.extend_from_slice(b"WEBPVP8X");
        webp.extend_from_slice(&10u32.to_le_bytes());
        webp.extend_from_slice(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(code(inspect_image(&webp, &ImageLimits::default())), ErrorCode::TooLarge);

        // A real JPEG with its SOF0 height/width patched to 65000 × 65000.
        let mut jpeg = JPEG.to_vec();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF0");
        jpeg[sof + 5..sof + 7].copy_from_slice(&65_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&65_000u16.to_be_bytes());
        assert_eq!(code(inspect_image(&jpeg, &ImageLimits::default())), ErrorCode::TooLarge);
    }

    #[test]
    fn garbage_after_the_magic_is_invalid_not_a_panic() {
        for magic in [
            &[0xFF, 0xD8, 0xFF][..],
            PNG_SIGNATURE,
            b"GIF89a",
            b"RIFF\xff\xff\xff\xffWEBP",
        ] {
            for filler in [0x00u8, 0xFF, 0x2C, 0x21] {
                let mut v = magic.to_vec();
                v.extend(std::iter::repeat_n(filler, 64));
                let r = inspect_image(&v, &ImageLimits::default());
                assert!(r.is_err(), "{magic:?} + {filler:#x}");
            }
        }
    }

    #[test]
    fn content_types_round_trip() {
        for f in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Gif, ImageFormat::WebP] {
            assert_eq!(ImageFormat::from_content_type(f.content_type()), Some(f));
        }
        assert_eq!(ImageFormat::from_content_type("image/svg+xml"), None);
        assert_eq!(ImageFormat::from_content_type("text/html"), None);
    }

    proptest::proptest! {
        /// Any bytes behind any magic: an answer, never a panic or an overflow.
        #[test]
        fn arbitrary_bytes_never_panic(magic in 0usize..5, tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let prefixes: [&[u8]; 5] = [&[0xFF, 0xD8, 0xFF], PNG_SIGNATURE, b"GIF89a", b"RIFF\x40\0\0\0WEBPVP8 ", b""];
            let mut v = prefixes[magic].to_vec();
            v.extend_from_slice(&tail);
            let _ = inspect_image(&v, &ImageLimits::default());
        }

        /// Flipping one byte of a real image never panics either.
        #[test]
        fn mutated_real_images_never_panic(which in 0usize..10, at in 0usize..2000, value in proptest::prelude::any::<u8>()) {
            let fixtures = all_fixtures();
            let mut v = fixtures[which].1.to_vec();
            let i = at % v.len();
            v[i] = value;
            let _ = inspect_image(&v, &ImageLimits::default());
        }
    }
}
