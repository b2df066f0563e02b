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
    fn parts_equal_joined() {
        let a = b"LATNF32\0\x04\0\0\0";
        let b = [1u8, 2, 3, 4];
        let joined: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(compress_parts(&[a, &b], 3), compress(&joined, 3));
    }
}
