//! The hash algorithms index.json may record for each shard file.

use std::path::Path;

use sha1::Digest;

use crate::error::{MdsError, Result};
use crate::index::FileInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Xxh32,
    Xxh64,
    Xxh3_64,
    Xxh3_128,
    /// streaming's name for xxh3_128 under its older alias.
    Xxh128,
}

impl HashAlgo {
    const ALL: [HashAlgo; 11] = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha224,
        HashAlgo::Sha256,
        HashAlgo::Sha384,
        HashAlgo::Sha512,
        HashAlgo::Xxh32,
        HashAlgo::Xxh64,
        HashAlgo::Xxh3_64,
        HashAlgo::Xxh3_128,
        HashAlgo::Xxh128,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha224 => "sha224",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
            HashAlgo::Xxh32 => "xxh32",
            HashAlgo::Xxh64 => "xxh64",
            HashAlgo::Xxh3_64 => "xxh3_64",
            HashAlgo::Xxh3_128 => "xxh3_128",
            HashAlgo::Xxh128 => "xxh128",
        }
    }

    pub fn from_name(name: &str) -> Option<HashAlgo> {
        HashAlgo::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Lowercase hex digest, as Python's `hexdigest()` prints it.
    pub fn hex(self, data: &[u8]) -> String {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish_hex()
    }
}

/// An incremental hash, for data written in pieces.
pub enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Xxh32(xxhash_rust::xxh32::Xxh32),
    Xxh64(xxhash_rust::xxh64::Xxh64),
    Xxh3_64(Box<xxhash_rust::xxh3::Xxh3>),
    Xxh3_128(Box<xxhash_rust::xxh3::Xxh3>),
}

impl Hasher {
    pub fn new(algo: HashAlgo) -> Hasher {
        use xxhash_rust::{xxh3::Xxh3, xxh32::Xxh32, xxh64::Xxh64};
        match algo {
            HashAlgo::Md5 => Hasher::Md5(Default::default()),
            HashAlgo::Sha1 => Hasher::Sha1(Default::default()),
            HashAlgo::Sha224 => Hasher::Sha224(Default::default()),
            HashAlgo::Sha256 => Hasher::Sha256(Default::default()),
            HashAlgo::Sha384 => Hasher::Sha384(Default::default()),
            HashAlgo::Sha512 => Hasher::Sha512(Default::default()),
            HashAlgo::Xxh32 => Hasher::Xxh32(Xxh32::new(0)),
            HashAlgo::Xxh64 => Hasher::Xxh64(Xxh64::new(0)),
            HashAlgo::Xxh3_64 => Hasher::Xxh3_64(Box::new(Xxh3::new())),
            HashAlgo::Xxh3_128 | HashAlgo::Xxh128 => Hasher::Xxh3_128(Box::new(Xxh3::new())),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Xxh32(h) => h.update(data),
            Hasher::Xxh64(h) => h.update(data),
            Hasher::Xxh3_64(h) | Hasher::Xxh3_128(h) => h.update(data),
        }
    }

    pub fn finish_hex(self) -> String {
        match self {
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Sha224(h) => hex(&h.finalize()),
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha384(h) => hex(&h.finalize()),
            Hasher::Sha512(h) => hex(&h.finalize()),
            Hasher::Xxh32(h) => format!("{:08x}", h.digest()),
            Hasher::Xxh64(h) => format!("{:016x}", h.digest()),
            Hasher::Xxh3_64(h) => format!("{:016x}", h.digest()),
            Hasher::Xxh3_128(h) => format!("{:032x}", h.digest128()),
        }
    }
}

/// Every hash index.json records for one file, computed as its bytes go by,
/// for readers that stream a shard instead of holding it whole.
pub struct FileHashes {
    hashers: Vec<(String, String, Hasher)>,
}

impl FileHashes {
    /// The hashes `info` records (an unknown algorithm was refused when the
    /// index was parsed; it is refused here too for an index built by hand).
    pub fn new(info: &FileInfo) -> Result<FileHashes> {
        let hashers = info
            .hashes
            .iter()
            .map(|(algo, expected)| {
                let h =
                    HashAlgo::from_name(algo).ok_or_else(|| MdsError::UnknownHash(algo.clone()))?;
                Ok((algo.clone(), expected.clone(), Hasher::new(h)))
            })
            .collect::<Result<_>>()?;
        Ok(FileHashes { hashers })
    }

    pub fn update(&mut self, data: &[u8]) {
        for (_, _, h) in &mut self.hashers {
            h.update(data);
        }
    }

    /// The first recorded hash the bytes seen do not match, as an error naming `path`.
    pub fn finish(self, path: &Path) -> Result<()> {
        for (algo, expected, h) in self.hashers {
            let actual = h.finish_hex();
            if actual != expected {
                return Err(MdsError::HashMismatch {
                    path: path.to_path_buf(),
                    algo,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }
}

/// Checks every hash index.json records for the file `path` holding `data`.
pub fn check_hashes(path: &Path, data: &[u8], info: &FileInfo) -> Result<()> {
    let mut hashes = FileHashes::new(info)?;
    hashes.update(data);
    hashes.finish(path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_values() {
        assert_eq!(
            HashAlgo::Md5.hex(b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            HashAlgo::Sha1.hex(b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            HashAlgo::Sha256.hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(HashAlgo::Xxh32.hex(b""), "02cc5d05");
        assert_eq!(HashAlgo::Xxh64.hex(b""), "ef46db3751d8e999");
        assert_eq!(HashAlgo::Xxh3_64.hex(b""), "2d06800538d394c2");
        assert_eq!(HashAlgo::from_name("xxh3_128"), Some(HashAlgo::Xxh3_128));
        assert_eq!(HashAlgo::from_name("crc32"), None);
    }
}
