//! Single zstd frames with sizes checked before anything is allocated.
//!
//! The reference decompresses every frame with the size its header declares,
//! so a 5 KB file can ask for 64 GiB. Here a frame must declare its content
//! size, and that size must equal what the manifest expects.

/// Level the reference uses for DATA, ENVC and META frames.
pub const REFERENCE_LEVEL: i32 = 3;

/// Compresses `data` as one frame with its content size in the header,
/// byte-identical to python-zstandard's one-shot `ZstdCompressor().compress`
/// for the same libzstd (1.5.7).
pub fn compress(data: &[u8], level: i32) -> Vec<u8> {
    // Compressing from memory into a vector cannot fail for valid levels;
    // an error here would be an allocation failure, which aborts anyway.
    zstd::bulk::compress(data, level).unwrap_or_default()
}

/// Compresses the concatenation of `parts` as one frame (used for inner
/// header + payload without copying them together first).
pub fn compress_parts(parts: &[&[u8]], level: i32) -> Vec<u8> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if parts.len() == 1 {
        return compress(parts[0], level);
    }
    let mut joined = Vec::with_capacity(total);
    for p in parts {
        joined.extend_from_slice(p);
    }
    compress(&joined, level)
}

/// Like [`compress_parts`], plus zstd's XXH64 content checksum, which every
/// zstd decoder (the reference's included) verifies. Used for the manifest,
/// the one chunk the format gives no SHA-256.
pub fn compress_parts_checksummed(parts: &[&[u8]], level: i32) -> Vec<u8> {
    let joined = parts.concat();
    let mut cctx = zstd::zstd_safe::CCtx::create();
    let _ = cctx.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level));
    let _ = cctx.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true));
    let mut out = vec![0u8; zstd::zstd_safe::compress_bound(joined.len())];
    match cctx.compress2(&mut out[..], &joined) {
        Ok(n) => {
            out.truncate(n);
            out
        }
        // Unreachable with a compress_bound-sized buffer; fall back to a
        // frame without checksum rather than fail the write.
        Err(_) => compress(&joined, level),
    }
}

/// Largest block a zstd frame may hold (RFC 8878, Block_Maximum_Size).
const MAX_BLOCK: usize = 128 * 1024;

/// A zstd frame of stored ("raw") blocks holding `head` followed by `body`,
/// as byte pieces that borrow `body`. Any zstd decoder reads it, and writing
/// it costs nothing: no compression is attempted. For data that does not
/// compress (PNG gains 0.0 % at zstd level 3 and costs 0.4 ms per 1.7 MB).
///
/// Layout: magic, frame header descriptor 0xA0 (single segment, 4-byte
/// content size, no checksum), the content size, then blocks of at most
/// 128 KiB, each behind a 3-byte header (last-block bit, type 0 = raw, size).
pub fn stored_frame<'a>(head: &[u8], body: &'a [u8]) -> Option<Vec<std::borrow::Cow<'a, [u8]>>> {
    use std::borrow::Cow;
    let total = head.len() + body.len();
    let total32 = u32::try_from(total).ok()?;
    let mut pieces: Vec<Cow<'a, [u8]>> = Vec::with_capacity(2 * (total / MAX_BLOCK + 1) + 1);
    let mut owned = Vec::with_capacity(32 + head.len());
    owned.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0xa0]);
    owned.extend_from_slice(&total32.to_le_bytes());
    let mut head_left = head;
    let mut body_left = body;
    let mut remaining = total;
    loop {
        let size = remaining.min(MAX_BLOCK);
        remaining -= size;
        let last = u32::from(remaining == 0);
        let block_header = last | ((size as u32) << 3); // type 0: raw
        owned.extend_from_slice(&block_header.to_le_bytes()[..3]);
        let from_head = size.min(head_left.len());
        owned.extend_from_slice(&head_left[..from_head]);
        head_left = &head_left[from_head..];
        let from_body = size - from_head;
        if from_body > 0 {
            pieces.push(Cow::Owned(std::mem::take(&mut owned)));
            pieces.push(Cow::Borrowed(&body_left[..from_body]));
            body_left = &body_left[from_body..];
        }
        if remaining == 0 {
            break;
        }
    }
    if !owned.is_empty() {
        pieces.push(Cow::Owned(owned));
    }
    Some(pieces)
}

/// The content size a frame declares, if its header is readable and has one.
pub fn declared_size(frame: &[u8]) -> Result<u64, String> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err("the zstd frame does not declare its content size".into()),
        Err(_) => Err("not a zstd frame (unreadable frame header)".into()),
    }
}

/// Decompresses exactly one frame that must inflate to `expected` bytes,
/// into `out` (whose length is `expected`). Extra bytes after the frame,
/// a different declared size, or a short output are all errors.
pub fn decompress_exact_into(frame: &[u8], out: &mut [u8]) -> Result<(), String> {
    let declared = declared_size(frame)?;
    if declared != out.len() as u64 {
        return Err(format!(
            "the zstd frame declares {declared} bytes of content, the manifest expects {}",
            out.len()
        ));
    }
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(frame)
        .map_err(|code| format!("damaged zstd frame: {}", zstd::zstd_safe::get_error_name(code)))?;
    if frame_len != frame.len() {
        return Err(format!(
            "{} unexpected bytes follow the zstd frame",
            frame.len().saturating_sub(frame_len)
        ));
    }
    let mut dctx = zstd::zstd_safe::DCtx::create();
    let written = dctx
        .decompress(out, frame)
        .map_err(|code| format!("damaged zstd frame: {}", zstd::zstd_safe::get_error_name(code)))?;
    if written != out.len() {
        return Err(format!(
            "the zstd frame inflated to {written} bytes instead of {}",
            out.len()
        ));
    }
    Ok(())
}

/// Like [`decompress_exact_into`], allocating the output.
pub fn decompress_exact(frame: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; expected];
    decompress_exact_into(frame, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size_checks() {
        let data = b"hello hello hello hello".repeat(10);
        let frame = compress(&data, 3);
        assert_eq!(declared_size(&frame).unwrap(), data.len() as u64);
        assert_eq!(decompress_exact(&frame, data.len()).unwrap(), data);
        assert!(decompress_exact(&frame, data.len() + 1).is_err());
        assert!(decompress_exact(&frame, data.len() - 1).is_err());
        let mut trailing = frame.clone();
        trailing.push(0);
        assert!(decompress_exact(&trailing, data.len()).is_err());
        assert!(decompress_exact(&frame[..frame.len() - 1], data.len()).is_err());
        assert!(decompress_exact(b"garbage!", 3).is_err());
        assert!(decompress_exact(b"", 0).is_err());
    }

    #[test]
    fn checksum_catches_damage() {
        let data = b"{\"chunks\": []} and some more text to compress".repeat(20);
        let frame = compress_parts_checksummed(&[&data], 3);
        assert_eq!(decompress_exact(&frame, data.len()).unwrap(), data);
        let mut caught = 0;
        for i in 4..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x10;
            match decompress_exact(&bad, data.len()) {
                Ok(out) => assert_eq!(out, data, "byte {i} changed the content silently"),
                Err(_) => caught += 1,
            }
        }
        assert!(caught > frame.len() / 2);
    }

    #[test]
    fn stored_frames_decode_everywhere() {
        for n in [
            0usize,
            1,
            100,
            MAX_BLOCK - 12,
            MAX_BLOCK - 11,
            MAX_BLOCK,
            3 * MAX_BLOCK + 5,
        ] {
            let head = b"DATA0000\x01\x02\x03\x04";
            let body: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let frame: Vec<u8> = stored_frame(head, &body).unwrap().concat();
            let want: Vec<u8> = head.iter().chain(body.iter()).copied().collect();
            assert_eq!(zstd::bulk::decompress(&frame, want.len()).unwrap(), want, "n={n}");
            assert_eq!(decompress_exact(&frame, want.len()).unwrap(), want, "n={n}");
            assert_eq!(declared_size(&frame).unwrap(), want.len() as u64);
        }
    }

    #[test]
    fn parts_equal_joined() {
        let a = b"LATNF32\0\x04\0\0\0";
        let b = [1u8, 2, 3, 4];
        let joined: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(compress_parts(&[a, &b], 3), compress(&joined, 3));
    }
}
