//! The kernel cache: compiled images in memory and on disk.
//!
//! The key is a 128-bit hash of (generated source, arch, NVRTC version,
//! compile options). The source is derived from canonical formulas, so
//! equivalent formulas share entries. Disk entries live under
//! `$ACTFORGE_CACHE_DIR`, else `$XDG_CACHE_HOME/actforge/kernels`, else
//! `~/.cache/actforge/kernels`, one file per key. Files are written to a
//! temporary name and renamed, so readers never see a partial file; each
//! carries a magic, its key, its length and a checksum, and a file that
//! fails any check is counted as corrupt, deleted and recompiled, never
//! trusted.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::nvrtc::{self, CompileOptions, Compiled, Output};
use crate::error::Result;

const MAGIC: &[u8; 8] = b"AFKCACHE";
const FORMAT: u32 = 1;
const HEADER: usize = 8 + 4 + 16 + 1 + 4 + 8 + 8;

/// 128-bit cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; 16]);

impl Key {
    pub fn new(source: &str, opts: &CompileOptions, nvrtc: (i32, i32)) -> Key {
        let mut a = Hasher128::default();
        a.bytes(source.as_bytes());
        a.bytes(&opts.arch.to_le_bytes());
        a.bytes(&[opts.output as u8]);
        for o in opts.args() {
            a.bytes(o.as_bytes());
            a.bytes(&[0]);
        }
        a.bytes(&nvrtc.0.to_le_bytes());
        a.bytes(&nvrtc.1.to_le_bytes());
        Key(a.finish())
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Two independent 64-bit FNV-1a/splitmix lanes: collisions are not a
/// practical concern for a cache of generated kernels.
struct Hasher128 {
    a: u64,
    b: u64,
}

impl Default for Hasher128 {
    fn default() -> Self {
        Hasher128 {
            a: 0xcbf2_9ce4_8422_2325,
            b: 0x84222325_cbf29ce4 ^ 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl Hasher128 {
    fn bytes(&mut self, data: &[u8]) {
        for &x in data {
            self.a = (self.a ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3);
            self.b = (self.b ^ x as u64)
                .wrapping_mul(0xff51_afd7_ed55_8ccd)
                .rotate_left(23);
        }
        self.a ^= data.len() as u64;
        self.b = self.b.wrapping_add(data.len() as u64);
    }

    fn finish(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&fmix(self.a).to_le_bytes());
        out[8..].copy_from_slice(&fmix(self.b ^ self.a.rotate_left(17)).to_le_bytes());
        out
    }
}

fn fmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Checksum of the header fields before it and the payload.
fn checksum2(header: &[u8], payload: &[u8]) -> u64 {
    let mut h = Hasher128::default();
    h.bytes(header);
    h.bytes(payload);
    u64::from_le_bytes(h.finish()[..8].try_into().expect("8 bytes"))
}

/// Where a lookup was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Memory,
    Disk,
    Compiled,
}

/// Counters since the cache was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub misses: u64,
    /// Disk entries that failed validation (deleted and recompiled).
    pub corrupt: u64,
    /// Total NVRTC time spent on misses.
    pub compile_time: Duration,
}

#[derive(Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    compile_nanos: AtomicU64,
}

/// A compiled image as cached (no log: logs are for the compile that made it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub output: Output,
    pub arch: u32,
    pub bytes: Vec<u8>,
}

pub struct KernelCache {
    mem: Mutex<HashMap<Key, Arc<Image>>>,
    dir: Option<PathBuf>,
    counters: Counters,
}

impl KernelCache {
    /// A cache with its disk part in `dir` (`None`: memory only).
    pub fn new(dir: Option<PathBuf>) -> KernelCache {
        KernelCache {
            mem: Mutex::new(HashMap::new()),
            dir,
            counters: Counters::default(),
        }
    }

    /// The process-wide cache in the default directory.
    pub fn global() -> &'static KernelCache {
        static CACHE: OnceLock<KernelCache> = OnceLock::new();
        CACHE.get_or_init(|| KernelCache::new(default_dir()))
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            memory_hits: c.memory_hits.load(Ordering::Relaxed),
            disk_hits: c.disk_hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
            compile_time: Duration::from_nanos(c.compile_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Forget the in-memory entries (the disk cache stays).
    pub fn clear_memory(&self) {
        self.mem.lock().expect("cache lock").clear();
    }

    /// The image for `source` under `opts`: from memory, from disk, or
    /// compiled now (and stored in both).
    pub fn get_or_compile(
        &self,
        source: &str,
        name: &str,
        opts: &CompileOptions,
    ) -> Result<(Arc<Image>, Lookup)> {
        let v = nvrtc::load()?;
        let key = Key::new(source, opts, (v.major, v.minor));
        if let Some(img) = self.mem.lock().expect("cache lock").get(&key).cloned() {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((img, Lookup::Memory));
        }
        if let Some(img) = self.read_disk(&key) {
            self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
            let img = Arc::new(img);
            self.mem
                .lock()
                .expect("cache lock")
                .insert(key, img.clone());
            return Ok((img, Lookup::Disk));
        }
        let start = Instant::now();
        let c: Compiled = nvrtc::compile(source, name, opts)?;
        self.counters
            .compile_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let img = Arc::new(Image {
            output: c.output,
            arch: c.arch,
            bytes: c.image,
        });
        // A cache that cannot be written is slower, not broken.
        let _ = self.write_disk(&key, &img);
        self.mem
            .lock()
            .expect("cache lock")
            .insert(key, img.clone());
        Ok((img, Lookup::Compiled))
    }

    /// The image a device of compute capability `arch` loads: CUBIN for
    /// its SM, or, when this NVRTC does not know that SM (a GPU newer than
    /// the toolkit), PTX for the newest architecture below it that NVRTC
    /// knows ([`fallback_arch`]; the driver JIT-compiles it). The first
    /// error is kept when nothing fits. Through this cache.
    pub fn image_for(&self, source: &str, name: &str, arch: u32) -> Result<Arc<Image>> {
        match self.get_or_compile(source, name, &CompileOptions::cubin(arch)) {
            Ok((img, _)) => Ok(img),
            Err(first) => {
                let best = fallback_arch(arch, &nvrtc::supported_archs()?).ok_or(first)?;
                Ok(self
                    .get_or_compile(source, name, &CompileOptions::ptx(best))?
                    .0)
            }
        }
    }

    pub fn path_of(&self, key: &Key) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}.afk", key.hex())))
    }

    fn read_disk(&self, key: &Key) -> Option<Image> {
        let path = self.path_of(key)?;
        let data = fs::read(&path).ok()?;
        match decode(&data, key) {
            Some(img) => Some(img),
            None => {
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    fn write_disk(&self, key: &Key, img: &Image) -> std::io::Result<()> {
        let Some(path) = self.path_of(key) else {
            return Ok(());
        };
        let dir = path.parent().expect("cache files live in a directory");
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.{:x}.tmp",
            key.hex(),
            std::process::id(),
            unique()
        ));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&encode(key, img))?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }
}

fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) ^ (Instant::now().elapsed().as_nanos() as u64)
}

/// The architecture to emit PTX for on a GPU of compute capability `arch`
/// that NVRTC cannot target directly: the newest of `supported` not above
/// it (`None` when every one is newer).
pub fn fallback_arch(arch: u32, supported: &[u32]) -> Option<u32> {
    supported.iter().copied().filter(|&a| a <= arch).max()
}

/// `$ACTFORGE_CACHE_DIR`, `$XDG_CACHE_HOME/actforge/kernels` or
/// `~/.cache/actforge/kernels`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ACTFORGE_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    super::actforge_cache("kernels")
}

/// magic | format u32 | key [16] | output u8 | arch u32 | len u64 |
/// checksum u64 (of everything before it and the bytes) | bytes
pub fn encode(key: &Key, img: &Image) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + img.bytes.len());
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&FORMAT.to_le_bytes());
    v.extend_from_slice(&key.0);
    v.push(match img.output {
        Output::Cubin => 0,
        Output::Ptx => 1,
    });
    v.extend_from_slice(&img.arch.to_le_bytes());
    v.extend_from_slice(&(img.bytes.len() as u64).to_le_bytes());
    let sum = checksum2(&v, &img.bytes);
    v.extend_from_slice(&sum.to_le_bytes());
    v.extend_from_slice(&img.bytes);
    v
}

/// Validate and decode a cache file written for `key`.
pub fn decode(data: &[u8], key: &Key) -> Option<Image> {
    if data.len() < HEADER || &data[..8] != MAGIC {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
    if u32_at(8) != FORMAT || data[12..28] != key.0 {
        return None;
    }
    let output = match data[28] {
        0 => Output::Cubin,
        1 => Output::Ptx,
        _ => return None,
    };
    let arch = u32_at(29);
    let len = u64_at(33) as usize;
    let sum = u64_at(41);
    let bytes = &data[HEADER..];
    if bytes.len() != len || checksum2(&data[..41], bytes) != sum {
        return None;
    }
    Some(Image {
        output,
        arch,
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::new("src", &CompileOptions::cubin(90), (13, 0))
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let img = Image {
            output: Output::Cubin,
            arch: 90,
            bytes: (0..=255u8).collect(),
        };
        let k = key();
        let data = encode(&k, &img);
        assert_eq!(decode(&data, &k), Some(img.clone()));
        // Any flipped byte, truncation or a different key is rejected.
        for i in [0, 9, 13, 28, 30, 35, 42, HEADER, data.len() - 1] {
            let mut bad = data.clone();
            bad[i] ^= 0x40;
            assert_eq!(decode(&bad, &k), None, "byte {i}");
        }
        assert_eq!(decode(&data[..data.len() - 1], &k), None);
        let other = Key::new("src2", &CompileOptions::cubin(90), (13, 0));
        assert_eq!(decode(&data, &other), None);
    }

    #[test]
    fn keys_cover_every_input() {
        let base = key();
        assert_ne!(base, Key::new("src", &CompileOptions::cubin(80), (13, 0)));
        assert_ne!(base, Key::new("src", &CompileOptions::ptx(90), (13, 0)));
        assert_ne!(base, Key::new("src", &CompileOptions::cubin(90), (13, 1)));
        let mut v = CompileOptions::cubin(90);
        v.verbose_ptxas = true;
        assert_ne!(base, Key::new("src", &v, (13, 0)));
        assert_eq!(base, key());
    }

    #[test]
    fn a_gpu_newer_than_nvrtc_gets_ptx_of_the_newest_arch_below_it() {
        let known = [75, 80, 86, 89, 90, 100, 120];
        assert_eq!(fallback_arch(121, &known), Some(120));
        assert_eq!(fallback_arch(95, &known), Some(90));
        assert_eq!(fallback_arch(90, &known), Some(90));
        assert_eq!(fallback_arch(70, &known), None);
        assert_eq!(fallback_arch(90, &[]), None);
    }
}
