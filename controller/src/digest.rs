//! SHA-256 and SM3 (GB/T 32905) computed together over one stream of bytes, so every file is
//! read once for both digests.

use sha2::{Digest, Sha256};
use sm3::Sm3;

/// The two digests of one byte stream, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub sha256: String,
    pub sm3: String,
}

/// Feeds the same bytes to SHA-256 and SM3.
#[derive(Clone, Default)]
pub struct DualHasher {
    sha256: Sha256,
    sm3: Sm3,
    bytes: u64,
}

/// Below this, starting a second thread costs more than it saves.
const PARALLEL_MIN: usize = 256 * 1024;

impl DualHasher {
    pub fn new() -> DualHasher {
        DualHasher::default()
    }

    /// Hashes `data`; large buffers are hashed by both algorithms at once on two cores, since
    /// SM3 in software is several times slower than SHA-256 with the CPU's SHA extensions.
    pub fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if data.len() >= PARALLEL_MIN {
            let DualHasher { sha256, sm3, .. } = self;
            std::thread::scope(|scope| {
                scope.spawn(|| sm3.update(data));
                sha256.update(data);
            });
        } else {
            self.sha256.update(data);
            self.sm3.update(data);
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn finish(self) -> Digests {
        Digests {
            sha256: hex(&self.sha256.finalize()),
            sm3: hex(&self.sm3.finalize()),
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Digests of a whole in-memory buffer (tag files).
pub fn digest_bytes(data: &[u8]) -> Digests {
    let mut hasher = DualHasher::new();
    hasher.update(data);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // GB/T 32905-2016 appendix A example 1, and FIPS 180-2 "abc".
        let d = digest_bytes(b"abc");
        assert_eq!(
            d.sm3,
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn large_and_small_updates_agree() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut chunked = DualHasher::new();
        for chunk in data.chunks(1000) {
            chunked.update(chunk);
        }
        assert_eq!(chunked.finish(), digest_bytes(&data));
    }
}
