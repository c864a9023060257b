//! FNV-1a, the one non-cryptographic hash xlm uses: fingerprints of data and
//! pipelines (stable across versions and machines) and vocabulary lookups
//! (short keys from a fixed vocabulary, where SipHash's DoS resistance buys
//! nothing and costs most of the tokenizer's time).

use std::hash::Hasher;

/// 64-bit FNV-1a.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The FNV-1a hash of `bytes` as 16 hex digits.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h = Fnv::default();
    h.write(bytes);
    format!("{:016x}", h.finish())
}
