//! The hash algorithms index.json may record for each shard file.

use sha1::Digest;

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
        use xxhash_rust::{xxh3, xxh32, xxh64};
        match self {
            HashAlgo::Md5 => hex(&md5::Md5::digest(data)),
            HashAlgo::Sha1 => hex(&sha1::Sha1::digest(data)),
            HashAlgo::Sha224 => hex(&sha2::Sha224::digest(data)),
            HashAlgo::Sha256 => hex(&sha2::Sha256::digest(data)),
            HashAlgo::Sha384 => hex(&sha2::Sha384::digest(data)),
            HashAlgo::Sha512 => hex(&sha2::Sha512::digest(data)),
            HashAlgo::Xxh32 => format!("{:08x}", xxh32::xxh32(data, 0)),
            HashAlgo::Xxh64 => format!("{:016x}", xxh64::xxh64(data, 0)),
            HashAlgo::Xxh3_64 => format!("{:016x}", xxh3::xxh3_64(data)),
            HashAlgo::Xxh3_128 | HashAlgo::Xxh128 => format!("{:032x}", xxh3::xxh3_128(data)),
        }
    }
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
