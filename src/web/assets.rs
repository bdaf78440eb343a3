//! The embedded files, read once per process: the build's version, each file's content type and
//! hash, and its compressed encodings, made the first time a client asks for them.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    sync::{LazyLock, OnceLock},
};

use axum::{
    body::Bytes,
    http::{HeaderMap, header},
};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use super::{APPS, STATIC_PREFIX};

/// `web/` at compile time, in every profile.
#[derive(RustEmbed)]
#[folder = "web/"]
struct Files;

/// Every embedded file, by its path under `web/`.
pub struct Site {
    /// A hash of every file's path and content: the `<version>` of the static URLs.
    pub version: String,
    files: HashMap<String, Asset>,
}

pub struct Asset {
    /// The content as served without encoding (shells and workers with their version filled in).
    pub raw: Bytes,
    pub content_type: &'static str,
    hash: String,
    compressible: bool,
    gzip: OnceLock<Option<Bytes>>,
    brotli: OnceLock<Option<Bytes>>,
}

/// How a response body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    pub const ALL: [Encoding; 3] = [Encoding::Identity, Encoding::Gzip, Encoding::Brotli];

    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    /// The best encoding of `asset` that `Accept-Encoding` allows: brotli, then gzip, then none.
    /// Text only; an encoding that would not be smaller is not offered.
    pub(crate) fn negotiate(headers: &HeaderMap, asset: &Asset) -> Encoding {
        if !asset.compressible {
            return Encoding::Identity;
        }
        let accepted: Vec<(String, f32)> = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|item| {
                let mut parts = item.split(';').map(str::trim);
                let name = parts.next().unwrap_or_default().to_ascii_lowercase();
                let q = parts
                    .find_map(|p| p.strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                (name, q)
            })
            .collect();
        let ok = |name: &str| accepted.iter().any(|(n, q)| n == name && *q > 0.0);
        if ok("br") && asset.encoded(Encoding::Brotli).is_some() {
            Encoding::Brotli
        } else if ok("gzip") && asset.encoded(Encoding::Gzip).is_some() {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

impl Asset {
    fn new(path: &str, raw: Vec<u8>) -> Self {
        let content_type = content_type(path);
        let compressible = content_type.starts_with("text/")
            || content_type.contains("javascript")
            || content_type.contains("json")
            || content_type.contains("svg");
        let hash = hex(&Sha256::digest(&raw)[..8]);
        Self {
            raw: Bytes::from(raw),
            content_type,
            hash,
            compressible,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    /// A strong validator per encoding: the representations differ byte for byte.
    pub fn etag(&self, e: Encoding) -> String {
        match e.header() {
            None => format!("\"{}\"", self.hash),
            Some(name) => format!("\"{}-{name}\"", self.hash),
        }
    }

    /// The body in encoding `e` (falling back to the raw bytes when it was not worth making).
    pub fn body(&self, e: Encoding) -> Bytes {
        self.encoded(e).unwrap_or_else(|| self.raw.clone())
    }

    fn encoded(&self, e: Encoding) -> Option<Bytes> {
        let cell = match e {
            Encoding::Identity => return Some(self.raw.clone()),
            Encoding::Gzip => &self.gzip,
            Encoding::Brotli => &self.brotli,
        };
        cell.get_or_init(|| {
            let packed = match e {
                Encoding::Gzip => gzip(&self.raw),
                _ => brotli(&self.raw),
            }?;
            (packed.len() < self.raw.len()).then(|| Bytes::from(packed))
        })
        .clone()
    }
}

fn gzip(raw: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(raw).ok()?;
    enc.finish().ok()
}

fn brotli(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        w.write_all(raw).ok()?;
    }
    Some(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl Site {
    fn load() -> Self {
        let raw: BTreeMap<String, Vec<u8>> = Files::iter()
            .filter_map(|p| Files::get(&p).map(|f| (p.into_owned(), f.data.into_owned())))
            .collect();
        let mut h = Sha256::new();
        for (path, data) in &raw {
            h.update((path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update((data.len() as u64).to_le_bytes());
            h.update(data);
        }
        let version = hex(&h.finalize()[..6]);
        let mut files = HashMap::new();
        for (path, data) in &raw {
            let data = match APPS.iter().find(|a| {
                *path == format!("{}/index.html", a.dir) || *path == format!("{}/sw.js", a.dir)
            }) {
                Some(app) => fill_in(data, &version, &app_files(&raw, app.dir, &version)),
                None => data.clone(),
            };
            files.insert(path.clone(), Asset::new(path, data));
        }
        Site { version, files }
    }

    pub fn get(&self, path: &str) -> Option<&Asset> {
        self.files.get(path)
    }
}

/// The versioned URLs an app's service worker keeps for offline use: the shared files and the
/// app's own, but not its shell and worker (served at the app's path).
fn app_files(raw: &BTreeMap<String, Vec<u8>>, dir: &str, version: &str) -> Vec<String> {
    raw.keys()
        .filter(|p| p.starts_with("shared/") || p.starts_with(&format!("{dir}/")))
        .filter(|p| !p.ends_with("/index.html") && !p.ends_with("/sw.js"))
        .map(|p| format!("{STATIC_PREFIX}/{version}/{p}"))
        .collect()
}

/// Replaces `%VERSION%` and `%ASSETS%` (a JSON array of URLs) in a shell or worker.
fn fill_in(data: &[u8], version: &str, assets: &[String]) -> Vec<u8> {
    let list = serde_json::to_string(assets).unwrap_or_else(|_| "[]".into());
    String::from_utf8_lossy(data)
        .replace("%VERSION%", version)
        .replace("%ASSETS%", &list)
        .into_bytes()
}

static SITE: LazyLock<Site> = LazyLock::new(Site::load);

/// The embedded files of this build.
pub fn site() -> &'static Site {
    &SITE
}
