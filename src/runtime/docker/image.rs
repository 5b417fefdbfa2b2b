//! `meshsim image`: a binary, its shared libraries and its ELF loader in a FROM-scratch image.
//!
//! No registry and no builder: the rootfs is streamed as a tar straight into
//! `POST /images/create?fromSrc=-` (`docker import`). bollard's `import_image` is `docker load`
//! (it wants a `docker save` archive) and `build_image` without a body panics, so neither fits.
//! The tag is a content hash of the binary, so an unchanged binary is never imported twice.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use bytes::Bytes;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::closure::{self, Closure};
use super::error::{is_not_found, DockerError};

/// The repository every meshsim image is tagged in: `meshsim:<12 hex of sha256(binary)>`.
pub const REPO: &str = "meshsim";
/// The binary inside the image.
pub const BINARY_PATH: &str = "/usr/local/bin/meshsim";
/// The same binary under Envoy's name: `argv[0]` of `envoy` switches it to Envoy's flags.
pub const ENVOY_PATH: &str = "/usr/local/bin/envoy";

/// Tar chunks in flight between the blocking writer and the upload.
const CHUNK: usize = 256 * 1024;

/// What [`super::DockerRuntime::ensure_image`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `meshsim:<hash>`, ready for `launch`.
    pub tag: String,
    /// False when the tag was already present and nothing was imported.
    pub built: bool,
    /// The image's size as the daemon reports it.
    pub bytes: u64,
}

/// Two tasks of one process (tests, mostly) asking for the same missing image would import it
/// twice and leave a dangling copy; they take turns instead.
static BUILD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) async fn ensure(
    docker: &Docker,
    endpoint: &str,
    binary: &Path,
) -> Result<ImageInfo, DockerError> {
    let package_error = |reason: String| DockerError::Package {
        path: binary.to_path_buf(),
        reason,
    };
    let path = binary.to_path_buf();
    let digest = tokio::task::spawn_blocking(move || sha256_hex(&path))
        .await
        .map_err(|e| package_error(e.to_string()))?
        .map_err(|e| package_error(format!("cannot read it: {e}")))?;
    let version = &digest[..12];
    let tag = format!("{REPO}:{version}");

    let _turn = BUILD_LOCK.lock().await;
    if let Some(bytes) = image_size(docker, endpoint, &tag).await? {
        return Ok(ImageInfo {
            tag,
            built: false,
            bytes,
        });
    }

    let path = binary.to_path_buf();
    let closure = tokio::task::spawn_blocking(move || closure::resolve(&path))
        .await
        .map_err(|e| package_error(e.to_string()))?
        .map_err(package_error)?;
    let changes = image_changes(&closure, &digest);

    // The rootfs is written by a blocking task into a bounded channel and uploaded as it is
    // produced: a debug binary is hundreds of MB, not worth holding in memory or a temp file.
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let path = binary.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter::new(tx);
        let result = write_rootfs(&path, &closure, &mut out).and_then(|()| out.flush());
        if let Err(e) = &result {
            // Fail the upload instead of ending it: a tar cut at an entry boundary would
            // otherwise import as a valid, incomplete image.
            out.abort(io::Error::new(e.kind(), e.to_string()));
        }
        result
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(REPO)
        .tag(version)
        .changes(changes)
        .build();
    let imported = docker
        .create_image(Some(options), Some(bollard::body_try_stream(body)), None)
        .try_collect::<Vec<_>>()
        .await;
    let written = writer.await.map_err(|e| package_error(e.to_string()))?;
    // When both fail, the tar is the cause: the daemon only saw a broken stream.
    written.map_err(|e| package_error(format!("writing the image's rootfs: {e}")))?;
    imported.map_err(|e| DockerError::api(endpoint, format!("importing image {tag}"), e))?;

    let bytes = image_size(docker, endpoint, &tag).await?.unwrap_or(0);
    prune_old_images(docker, &tag).await;
    Ok(ImageInfo {
        tag,
        built: true,
        bytes,
    })
}

/// How many `meshsim:*` images to keep besides the one just built: every rebuilt binary makes
/// a new one (tens to hundreds of MB), and a few recent ones cover other worktrees and builds.
const KEEP_IMAGES: usize = 3;

/// Removes `meshsim:*` images older than the newest [`KEEP_IMAGES`], without force: one that a
/// container still uses stays. Best effort; a failure only leaves an image behind.
async fn prune_old_images(docker: &Docker, current: &str) {
    use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
    let filters = std::collections::HashMap::from([("reference", vec![REPO.to_string()])]);
    let Ok(mut images) = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
    else {
        return;
    };
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    for image in images.iter().skip(KEEP_IMAGES + 1) {
        for tag in image.repo_tags.iter().filter(|t| t.as_str() != current) {
            let options = RemoveImageOptionsBuilder::new().force(false).build();
            let _ = docker.remove_image(tag, Some(options), None).await;
        }
    }
}

/// The image's size, or None when the daemon does not have it.
pub(crate) async fn image_size(
    docker: &Docker,
    endpoint: &str,
    image: &str,
) -> Result<Option<u64>, DockerError> {
    match docker.inspect_image(image).await {
        Ok(inspect) => Ok(Some(inspect.size.unwrap_or(0).max(0) as u64)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(DockerError::api(
            endpoint,
            format!("inspecting image {image}"),
            e,
        )),
    }
}

/// Dockerfile instructions applied at import. No ENTRYPOINT: every container states its full
/// command, so `envoy -c …` and `meshsim service …` both work as compose `command:`s.
fn image_changes(closure: &Closure, digest: &str) -> Vec<String> {
    let mut changes = vec![
        format!(r#"CMD ["{BINARY_PATH}","--help"]"#),
        format!("LABEL meshsim.binary-sha256={digest}"),
    ];
    let dirs = closure.library_dirs();
    if !dirs.is_empty() {
        let joined: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        changes.push(format!("ENV LD_LIBRARY_PATH={}", joined.join(":")));
    }
    changes
}

fn sha256_hex(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The image's filesystem: the binary, its `envoy` name, the loader and libraries at the paths
/// the loader asks for (real contents, never symlinks into nowhere), `/tmp` (seed configs write
/// access logs there) and `/etc/meshsim` (where configs are copied).
pub(crate) fn write_rootfs(binary: &Path, closure: &Closure, out: impl Write) -> io::Result<()> {
    let mut files: Vec<(PathBuf, PathBuf)> = vec![(PathBuf::from(BINARY_PATH), binary.into())];
    for lib in closure.interpreter.iter().chain(&closure.libraries) {
        if files.iter().all(|(at, _)| at != lib) {
            files.push((lib.clone(), lib.clone()));
        }
    }
    let mut dirs = std::collections::BTreeSet::new();
    for (at, _) in &files {
        dirs.extend(at.ancestors().skip(1).map(relative));
    }
    dirs.insert(relative(Path::new("/etc/meshsim")));
    dirs.insert(relative(Path::new("/etc")));
    dirs.remove(Path::new(""));

    let mut tar = tar::Builder::new(out);
    for dir in &dirs {
        let mut header = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut header, dir, io::empty())?;
    }
    let mut tmp = header(tar::EntryType::Directory, 0o1777, 0);
    tar.append_data(&mut tmp, "tmp", io::empty())?;
    for (at, from) in &files {
        // Opened by path, so a symlinked library contributes its target's contents.
        let file = std::fs::File::open(from)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", from.display())))?;
        let len = file.metadata()?.len();
        let mut header = header(tar::EntryType::Regular, 0o755, len);
        tar.append_data(&mut header, relative(at), file)?;
    }
    let mut link = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut link, relative(Path::new(ENVOY_PATH)), "meshsim")?;
    tar.into_inner()?.flush()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// Tar paths are relative to the image root.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix("/").unwrap_or(path).to_path_buf()
}

/// A `Write` that hands fixed-size chunks to an async receiver (the upload body).
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading"))
    }

    fn abort(&mut self, err: io::Error) {
        let _ = self.tx.blocking_send(Err(err));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_has_binary_envoy_link_loader_tmp_and_config_dir() {
        // A small dynamically linked binary every Linux has.
        let exe = Path::new("/bin/sh");
        let closure = closure::resolve(exe).unwrap();
        let mut tar_bytes = Vec::new();
        write_rootfs(exe, &closure, &mut tar_bytes).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut entries = std::collections::HashMap::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let link = entry.link_name().unwrap().map(|l| l.display().to_string());
            entries.insert(
                path,
                (
                    entry.header().entry_type(),
                    entry.header().mode().unwrap(),
                    link,
                ),
            );
        }
        let binary = &entries["usr/local/bin/meshsim"];
        assert_eq!(binary.0, tar::EntryType::Regular);
        assert_eq!(binary.1 & 0o111, 0o111);
        let envoy = &entries["usr/local/bin/envoy"];
        assert_eq!(envoy.0, tar::EntryType::Symlink);
        assert_eq!(envoy.2.as_deref(), Some("meshsim"));
        assert_eq!(entries["tmp"].1, 0o1777);
        assert_eq!(entries["etc/meshsim"].0, tar::EntryType::Directory);
        if let Some(interp) = &closure.interpreter {
            let at = relative(interp).display().to_string();
            assert_eq!(entries[&at].0, tar::EntryType::Regular, "{at}");
        }
        for lib in &closure.libraries {
            let at = relative(lib).display().to_string();
            assert_eq!(entries[&at].0, tar::EntryType::Regular, "{at}");
        }
    }

    #[test]
    fn changes_set_cmd_and_library_path_but_no_entrypoint() {
        let closure = Closure {
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            libraries: vec!["/lib/x86_64-linux-gnu/libc.so.6".into()],
        };
        let changes = image_changes(&closure, "ab");
        assert_eq!(changes[0], r#"CMD ["/usr/local/bin/meshsim","--help"]"#);
        assert!(changes.contains(&"ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu".to_string()));
        assert!(!changes.iter().any(|c| c.starts_with("ENTRYPOINT")));
    }
}
