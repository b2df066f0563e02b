//! The fixed header at the start of a file.
//!
//! raiiaf (33 bytes, `<6sBBBIIIQI`): magic `raiiaf`, version major, minor,
//! flags u8, META offset u32, META size u32, chunk count u32, file size u64,
//! reserved u32. Legacy GEN5 (32 bytes, `<4sBBHIIIIQ`): magic `GEN5`,
//! major, minor, flags u16, META offset, META size, chunk count, file size
//! u32, reserved u64.

use crate::error::{Error, Result};

/// The first bytes of a raiiaf 1.x file.
pub const RAIIAF_MAGIC: &[u8; 6] = b"raiiaf";
/// The first bytes of a legacy gen5 file.
pub const GEN5_MAGIC: &[u8; 4] = b"GEN5";
/// The length of a raiiaf 1.x header.
pub const RAIIAF_HEADER_LEN: usize = 33;
/// The length of a gen5 header.
pub const GEN5_HEADER_LEN: usize = 32;

/// Which of the two on-disk generations a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// raiiaf 1.x (magic `raiiaf`).
    Raiiaf,
    /// gen5 0.1.0, the predecessor (magic `GEN5`); read-only.
    Gen5,
}

impl Flavor {
    /// Its header's length in bytes.
    pub fn header_len(self) -> usize {
        match self {
            Flavor::Raiiaf => RAIIAF_HEADER_LEN,
            Flavor::Gen5 => GEN5_HEADER_LEN,
        }
    }

    /// The manifest's root key.
    pub fn manifest_root(self) -> &'static str {
        match self {
            Flavor::Raiiaf => "raiiaf_metadata",
            Flavor::Gen5 => "gen5_metadata",
        }
    }

    /// Its magic, as text.
    pub fn magic_str(self) -> &'static str {
        match self {
            Flavor::Raiiaf => "raiiaf",
            Flavor::Gen5 => "GEN5",
        }
    }
}

/// A file's fixed-size header (FORMAT.md §2), as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// raiiaf 1.x or gen5, from the magic.
    pub flavor: Flavor,
    /// Format major version; this reader handles 1.
    pub version_major: u8,
    /// Format minor version (compatible within a major version).
    pub version_minor: u8,
    /// Header flags (no bits defined; ignored).
    pub flags: u16,
    /// Where the META chunk starts.
    pub meta_offset: u64,
    /// META's length in bytes.
    pub meta_size: u64,
    /// How many chunks the file declares.
    pub chunk_count: u64,
    /// The file's length as the header declares it.
    pub file_size: u64,
    /// Reserved (zero; ignored).
    pub reserved: u64,
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as u64
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl Header {
    /// Parses the header at the start of `file`, checking magic and version.
    pub fn parse(file: &[u8]) -> Result<Header> {
        let flavor = if file.starts_with(RAIIAF_MAGIC) {
            Flavor::Raiiaf
        } else if file.starts_with(GEN5_MAGIC) {
            Flavor::Gen5
        } else {
            let head = &file[..file.len().min(6)];
            return Err(Error::BadMagic {
                found: String::from_utf8_lossy(head).into_owned(),
            });
        };
        let len = flavor.header_len();
        if file.len() < len {
            return Err(Error::Truncated {
                what: "the header".into(),
                start: 0,
                end: len as u64,
                file_len: file.len() as u64,
            });
        }
        let h = match flavor {
            Flavor::Raiiaf => Header {
                flavor,
                version_major: file[6],
                version_minor: file[7],
                flags: file[8] as u16,
                meta_offset: u32_at(file, 9),
                meta_size: u32_at(file, 13),
                chunk_count: u32_at(file, 17),
                file_size: u64_at(file, 21),
                reserved: u32_at(file, 29),
            },
            Flavor::Gen5 => Header {
                flavor,
                version_major: file[4],
                version_minor: file[5],
                flags: u16::from_le_bytes([file[6], file[7]]),
                meta_offset: u32_at(file, 8),
                meta_size: u32_at(file, 12),
                chunk_count: u32_at(file, 16),
                file_size: u32_at(file, 20),
                reserved: u64_at(file, 24),
            },
        };
        if h.version_major != 1 {
            return Err(Error::UnsupportedVersion {
                major: h.version_major,
                minor: h.version_minor,
            });
        }
        Ok(h)
    }

    /// Serialises a raiiaf header (this crate writes no GEN5 files).
    pub fn to_bytes(&self) -> Result<[u8; RAIIAF_HEADER_LEN]> {
        let u32_field = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| {
                Error::Unsupported(format!(
                    "{what} is {v}, beyond the format's 32-bit limit: files must stay under 4 GiB"
                ))
            })
        };
        let mut b = [0u8; RAIIAF_HEADER_LEN];
        b[..6].copy_from_slice(RAIIAF_MAGIC);
        b[6] = self.version_major;
        b[7] = self.version_minor;
        b[8] = self.flags as u8;
        b[9..13].copy_from_slice(&u32_field(self.meta_offset, "the META offset")?.to_le_bytes());
        b[13..17].copy_from_slice(&u32_field(self.meta_size, "the META size")?.to_le_bytes());
        b[17..21].copy_from_slice(&u32_field(self.chunk_count, "the chunk count")?.to_le_bytes());
        b[21..29].copy_from_slice(&self.file_size.to_le_bytes());
        b[29..33].copy_from_slice(&(self.reserved as u32).to_le_bytes());
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header {
            flavor: Flavor::Raiiaf,
            version_major: 1,
            version_minor: 1,
            flags: 0,
            meta_offset: 1000,
            meta_size: 200,
            chunk_count: 3,
            file_size: 1200,
            reserved: 0,
        };
        assert_eq!(Header::parse(&h.to_bytes().unwrap()).unwrap(), h);
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(matches!(Header::parse(b""), Err(Error::BadMagic { .. })));
        assert!(matches!(Header::parse(b"PNG\x89"), Err(Error::BadMagic { .. })));
        assert!(matches!(
            Header::parse(b"raiiaf\x01"),
            Err(Error::Truncated { .. })
        ));
        let mut b = [0u8; 33];
        b[..6].copy_from_slice(b"raiiaf");
        b[6] = 2;
        assert!(matches!(
            Header::parse(&b),
            Err(Error::UnsupportedVersion { major: 2, .. })
        ));
        b[6] = 0;
        assert!(matches!(Header::parse(&b), Err(Error::UnsupportedVersion { .. })));
    }

    #[test]
    fn refuses_offsets_beyond_u32() {
        let h = Header {
            flavor: Flavor::Raiiaf,
            version_major: 1,
            version_minor: 0,
            flags: 0,
            meta_offset: 1 << 32,
            meta_size: 1,
            chunk_count: 0,
            file_size: (1 << 32) + 1,
            reserved: 0,
        };
        assert!(matches!(h.to_bytes(), Err(Error::Unsupported(_))));
    }
}
