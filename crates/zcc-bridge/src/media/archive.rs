//! The object store the archive writes to: local disk, S3 (or any S3-compatible server) or Azure Blob, behind
//! `object_store`. Writes stream with bounded memory: local files go to a temporary file that is fsynced and
//! renamed into place (then the directory is fsynced), so a reader never sees half a file; S3 and Azure get a
//! single PUT for small files and a multipart upload (a few parts in flight) for large ones.

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, GetResult, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::config::{MediaConfig, StorageConfig};

pub use crate::config::ArchiveUrl;

/// Below this a file's buffer grows as needed; above it, the first part is allocated at its full size.
const SMALL_FILE: usize = 1 << 20;

/// Where local writes are staged before the rename (same filesystem as the archive, so the rename is atomic).
const PARTIAL_DIR: &str = ".partial";

/// A store, its URL signer (S3, Azure), the key prefix and the local root (disk).
type Opened = (
    Arc<dyn ObjectStore>,
    Option<Arc<dyn Signer>>,
    String,
    Option<PathBuf>,
);

/// An open archive.
#[derive(Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    prefix: Option<Path>,
    /// Set for a local archive: writes bypass `object_store` to get fsync and atomic rename.
    local_root: Option<PathBuf>,
    url: String,
    part_size: usize,
    upload_concurrency: usize,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("url", &self.url).finish()
    }
}

impl Archive {
    /// Opens `url` with the credentials of `storage` (unset ones come from the standard `AWS_*`/`AZURE_*`
    /// variables).
    pub fn open(url: &str, storage: &StorageConfig, media: &MediaConfig) -> anyhow::Result<Self> {
        let parsed = ArchiveUrl::parse(url).map_err(|e| anyhow::anyhow!("storage.media: {e}"))?;
        let (store, signer, prefix, local_root): Opened = match parsed {
            ArchiveUrl::Local(root) => {
                std::fs::create_dir_all(&root)
                    .with_context(|| format!("creating the media directory {}", root.display()))?;
                let root = root
                    .canonicalize()
                    .with_context(|| format!("resolving {}", root.display()))?;
                let store = LocalFileSystem::new_with_prefix(&root)
                    .with_context(|| format!("opening {}", root.display()))?;
                (Arc::new(store), None, String::new(), Some(root))
            }
            ArchiveUrl::S3 { bucket, prefix } => {
                let s3 = &storage.s3;
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_allow_http(s3.allow_http)
                    .with_virtual_hosted_style_request(s3.virtual_hosted_style);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                if let Some(token) = &s3.session_token {
                    builder = builder.with_token(token.expose());
                }
                let store = Arc::new(builder.build().context("configuring the S3 archive")?);
                (store.clone(), Some(store as Arc<dyn Signer>), prefix, None)
            }
            ArchiveUrl::Azure { container, prefix } => {
                let az = &storage.azure;
                let mut builder = MicrosoftAzureBuilder::from_env()
                    .with_container_name(&container)
                    .with_allow_http(az.allow_http)
                    .with_use_emulator(az.use_emulator);
                if let Some(account) = &az.account {
                    builder = builder.with_account(account);
                }
                if let Some(key) = &az.access_key {
                    builder = builder.with_access_key(key.expose());
                }
                if let Some(endpoint) = &az.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                let store = Arc::new(builder.build().context("configuring the Azure archive")?);
                (store.clone(), Some(store as Arc<dyn Signer>), prefix, None)
            }
        };
        Ok(Self {
            store,
            signer,
            prefix: (!prefix.is_empty()).then(|| Path::from(prefix)),
            local_root,
            url: url.to_string(),
            part_size: media.part_size_mib * 1024 * 1024,
            upload_concurrency: media.upload_concurrency,
        })
    }

    /// Removes temporary files of local writes that stopped (a crash, a kill) at least `older_than` ago: a
    /// download in progress writes at least every read timeout, so its file is never that old. Returns how many.
    pub async fn clean_partial(&self, older_than: Duration) -> anyhow::Result<u64> {
        let Some(root) = &self.local_root else {
            return Ok(0);
        };
        let dir = root.join(PARTIAL_DIR);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await? {
            let stale = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= older_than);
            if stale && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %dir.display(), "removed partial files of interrupted downloads");
        }
        Ok(removed)
    }

    /// The `storage.media` URL (holds no secret).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    fn path(&self, key: &str) -> Path {
        let key = Path::from(key);
        match &self.prefix {
            Some(prefix) => prefix.parts().chain(key.parts()).collect(),
            None => key,
        }
    }

    /// Starts writing `key`. Nothing is visible at `key` until `ObjectWriter::finish`.
    pub async fn writer(&self, key: &str, content_type: &str) -> anyhow::Result<ObjectWriter> {
        let inner = match &self.local_root {
            Some(root) => {
                let dest = local_path(root, key)?;
                let dir = dest
                    .parent()
                    .map(FsPath::to_path_buf)
                    .unwrap_or_else(|| root.clone());
                tokio::fs::create_dir_all(&dir)
                    .await
                    .with_context(|| format!("creating {}", dir.display()))?;
                let partial = root.join(PARTIAL_DIR);
                tokio::fs::create_dir_all(&partial)
                    .await
                    .with_context(|| format!("creating {}", partial.display()))?;
                let tmp = partial.join(format!("{:016x}.part", rand::random::<u64>()));
                let file = tokio::fs::File::create(&tmp)
                    .await
                    .with_context(|| format!("creating {}", tmp.display()))?;
                Sink::Local {
                    file,
                    tmp,
                    dest,
                    dir,
                }
            }
            None => Sink::Buffered { buffer: Vec::new() },
        };
        Ok(ObjectWriter {
            archive: self.clone(),
            path: self.path(key),
            content_type: content_type.to_string(),
            inner,
            bytes: 0,
            hasher: Sha256::new(),
        })
    }

    pub async fn head(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("HEAD {key}")),
        }
    }

    /// The object, or the byte range of it.
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> anyhow::Result<GetResult> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        self.store
            .get_opts(&self.path(key), options)
            .await
            .with_context(|| format!("reading {key} from {}", self.url))
    }

    /// Deletes `key`; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {key} from {}", self.url)),
        }
    }

    /// The store's own presigned GET URL (S3, Azure); `None` for a local archive.
    pub async fn presigned_url(&self, key: &str, ttl: Duration) -> anyhow::Result<Option<String>> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let url = signer
            .signed_url(axum::http::Method::GET, &self.path(key), ttl)
            .await
            .with_context(|| format!("presigning {key}"))?;
        Ok(Some(url.to_string()))
    }
}

/// The path of `key` under a local root, refusing anything that could leave it.
fn local_path(root: &FsPath, key: &str) -> anyhow::Result<PathBuf> {
    let mut path = root.to_path_buf();
    for part in key.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
            anyhow::bail!("invalid object key {key:?}");
        }
        path.push(part);
    }
    Ok(path)
}

enum Sink {
    Local {
        file: tokio::fs::File,
        tmp: PathBuf,
        dest: PathBuf,
        dir: PathBuf,
    },
    /// S3/Azure, until the first part is full (a small file is sent with one PUT).
    Buffered {
        buffer: Vec<u8>,
    },
    Multipart(Box<WriteMultipart>),
}

/// An object being written. Hashes (SHA-256) and counts what passes through.
pub struct ObjectWriter {
    archive: Archive,
    path: Path,
    content_type: String,
    inner: Sink,
    bytes: u64,
    hasher: Sha256,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub sha256: String,
    pub bytes: u64,
}

impl ObjectWriter {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn attributes(&self) -> Attributes {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, self.content_type.clone().into());
        attributes
    }

    /// Appends `chunk`; waits while the upload is `upload_concurrency` parts behind (bounded memory).
    pub async fn write(&mut self, chunk: Bytes) -> anyhow::Result<()> {
        self.hasher.update(&chunk);
        self.bytes += chunk.len() as u64;
        let part_size = self.archive.part_size;
        match &mut self.inner {
            Sink::Local { file, tmp, .. } => file
                .write_all(&chunk)
                .await
                .with_context(|| format!("writing {}", tmp.display()))?,
            Sink::Buffered { buffer } => {
                if buffer.len() + chunk.len() > SMALL_FILE {
                    // Probably a large file: size the first part exactly once instead of letting it double.
                    buffer.reserve_exact((part_size + chunk.len()).saturating_sub(buffer.len()));
                }
                buffer.extend_from_slice(&chunk);
                if buffer.len() >= part_size {
                    let first = std::mem::take(buffer);
                    let upload = self
                        .archive
                        .store
                        .put_multipart_opts(
                            &self.path,
                            PutMultipartOptions {
                                attributes: self.attributes(),
                                ..Default::default()
                            },
                        )
                        .await
                        .with_context(|| format!("starting the upload of {}", self.path))?;
                    let mut upload = WriteMultipart::new_with_chunk_size(upload, part_size);
                    upload.put(Bytes::from(first));
                    self.inner = Sink::Multipart(Box::new(upload));
                }
            }
            Sink::Multipart(upload) => {
                upload
                    .wait_for_capacity(self.archive.upload_concurrency)
                    .await
                    .with_context(|| format!("uploading {}", self.path))?;
                // Copied into the part rather than kept by reference: a chunk shares its allocation with the
                // HTTP client's read buffer, which would otherwise stay alive until the part is uploaded.
                upload.write(&chunk);
            }
        }
        Ok(())
    }

    /// Makes the object visible at its key, complete.
    pub async fn finish(self) -> anyhow::Result<Written> {
        let written = Written {
            sha256: hex::encode(self.hasher.clone().finalize()),
            bytes: self.bytes,
        };
        let attributes = self.attributes();
        match self.inner {
            Sink::Local {
                mut file,
                tmp,
                dest,
                dir,
            } => {
                file.flush().await?;
                file.sync_all()
                    .await
                    .with_context(|| format!("fsync {}", tmp.display()))?;
                drop(file);
                tokio::fs::rename(&tmp, &dest)
                    .await
                    .with_context(|| format!("renaming into {}", dest.display()))?;
                // The rename is durable once the directory is.
                tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
                    .await
                    .context("fsync of the media directory panicked")?
                    .context("fsync of the media directory")?;
            }
            Sink::Buffered { buffer } => {
                self.archive
                    .store
                    .put_opts(
                        &self.path,
                        PutPayload::from(buffer),
                        PutOptions {
                            attributes,
                            ..Default::default()
                        },
                    )
                    .await
                    .with_context(|| format!("uploading {}", self.path))?;
            }
            Sink::Multipart(upload) => {
                upload
                    .finish()
                    .await
                    .with_context(|| format!("completing the upload of {}", self.path))?;
            }
        }
        Ok(written)
    }

    /// Drops what was written (temporary file, uploaded parts).
    pub async fn abort(self) {
        match self.inner {
            Sink::Local { file, tmp, .. } => {
                drop(file);
                if let Err(e) = tokio::fs::remove_file(&tmp).await {
                    tracing::warn!(error = %e, path = %tmp.display(), "could not remove a partial media file");
                }
            }
            Sink::Buffered { .. } => {}
            Sink::Multipart(upload) => {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, path = %self.path, "could not abort a multipart upload");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_urls_parse() {
        assert_eq!(
            ArchiveUrl::parse("file://data/media"),
            Ok(ArchiveUrl::Local("data/media".into()))
        );
        assert_eq!(
            ArchiveUrl::parse("s3://bucket/a/b/"),
            Ok(ArchiveUrl::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            })
        );
        assert_eq!(
            ArchiveUrl::parse("az://c"),
            Ok(ArchiveUrl::Azure {
                container: "c".into(),
                prefix: String::new()
            })
        );
        assert!(ArchiveUrl::parse("s3://").is_err());
        assert!(ArchiveUrl::parse("ftp://x").is_err());
        assert!(ArchiveUrl::parse("file://").is_err());
    }

    #[test]
    fn local_keys_cannot_escape_the_root() {
        let root = FsPath::new("/srv/media");
        assert!(local_path(root, "2026/11/21/E/R.mp3").is_ok());
        for bad in ["../x", "a/../../x", "/abs", "a//b", "a/./b"] {
            assert!(local_path(root, bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn local_writes_appear_atomically_with_their_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let archive =
            Archive::open(&url, &StorageConfig::default(), &MediaConfig::default()).unwrap();
        let mut writer = archive
            .writer("2026/11/21/E1/R1.mp3", "audio/mpeg")
            .await
            .unwrap();
        writer.write(Bytes::from_static(b"hello ")).await.unwrap();
        assert_eq!(archive.head("2026/11/21/E1/R1.mp3").await.unwrap(), None);
        writer.write(Bytes::from_static(b"world")).await.unwrap();
        let written = writer.finish().await.unwrap();
        assert_eq!(written.bytes, 11);
        assert_eq!(written.sha256, hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(
            archive.head("2026/11/21/E1/R1.mp3").await.unwrap(),
            Some(11)
        );
        let got = archive
            .get("2026/11/21/E1/R1.mp3", Some(6..11))
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), b"world");
        // An aborted write leaves nothing behind, not even its temporary file.
        let mut writer = archive
            .writer("2026/11/21/E1/R2.mp3", "audio/mpeg")
            .await
            .unwrap();
        writer.write(Bytes::from_static(b"partial")).await.unwrap();
        writer.abort().await;
        let left: Vec<_> = std::fs::read_dir(dir.path().join("2026/11/21/E1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec!["R1.mp3".to_string()]);
        assert_eq!(
            std::fs::read_dir(dir.path().join(PARTIAL_DIR))
                .unwrap()
                .count(),
            0
        );
        // What a killed process leaves behind is removed once it is old enough.
        let mut writer = archive
            .writer("2026/11/21/E1/R3.mp3", "audio/mpeg")
            .await
            .unwrap();
        writer
            .write(Bytes::from_static(b"interrupted"))
            .await
            .unwrap();
        std::mem::forget(writer);
        assert_eq!(
            archive
                .clean_partial(Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        assert_eq!(archive.clean_partial(Duration::ZERO).await.unwrap(), 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join(PARTIAL_DIR))
                .unwrap()
                .count(),
            0
        );
    }
}
