//! Unpack safety (every escape refused, nothing written outside the root), whiteouts and
//! opaque directories across layers, and compression detection.

use std::{
    io::{BufReader, Read as _, Write as _},
    sync::atomic::Ordering,
};

use super::*;

/// A layer under construction. Paths and link names are written raw into the header so the
/// tests can build the malicious archives `tar::Builder` itself refuses to make.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn entry(mut self, kind: tar::EntryType, path: &str, link: &str, data: &[u8]) -> Self {
        let mut header = tar::Header::new_old();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(1_700_000_000);
        let old = header.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    /// An entry with a GNU header (which `tar` reads long names from) and a raw name.
    fn gnu_entry(mut self, kind: tar::EntryType, path: &str, data: &[u8]) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    /// A PAX extended header (`x`, ustar, as `tar` requires) describing the next entry.
    fn pax_entry(mut self, records: &[u8]) -> Self {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_path("PaxHeaders/next").unwrap();
        header.set_size(records.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.0.append(&header, records).unwrap();
        self
    }

    fn owned_file(self, path: &str, data: &[u8], mode: u32, uid: u64) -> Self {
        self.owned(tar::EntryType::Regular, path, data, mode, uid)
    }

    fn owned(mut self, kind: tar::EntryType, path: &str, data: &[u8], mode: u32, uid: u64) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_path(path).unwrap();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn dir(self, path: &str) -> Self {
        self.entry(tar::EntryType::Directory, path, "", b"")
    }

    fn file(self, path: &str, data: &[u8]) -> Self {
        self.entry(tar::EntryType::Regular, path, "", data)
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Symlink, path, target, b"")
    }

    fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Link, path, target, b"")
    }

    fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// A root inside a sandbox, next to an `outside` directory holding one file.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        fs::set_permissions(
            dir.path().join("outside/secret"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn unpack(&self, tar: &[u8]) -> Result<LayerStats, UnpackError> {
        self.unpack_with(tar, &UnpackOptions::default())
    }

    fn unpack_with(&self, tar: &[u8], options: &UnpackOptions) -> Result<LayerStats, UnpackError> {
        unpack_layer(tar, LAYER_TAR, &self.root(), options)
    }

    /// The names in the root, sorted.
    fn root_names(&self) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(self.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// The sandbox holds exactly `root` and `outside`, and `outside` only its secret, intact.
    fn assert_nothing_outside(&self) {
        let mut top: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        assert_eq!(top, ["outside", "root"]);
        let outside: Vec<_> = fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, ["secret"]);
        let secret = self.outside().join("secret");
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
        let meta = fs::symlink_metadata(&secret).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::nlink(&meta),
            1,
            "secret was hard-linked"
        );
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o640,
            "secret's mode changed"
        );
    }
}

const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn refused(result: Result<LayerStats, UnpackError>) -> Escape {
    match result {
        Err(UnpackError::RefuseEntry { reason, .. }) => reason,
        other => panic!("expected a refused entry, got {other:?}"),
    }
}

#[test]
fn refuses_parent_components() {
    let sandbox = Sandbox::new();
    for path in ["../evil", "a/../../evil", "./../outside/secret"] {
        let tar = Layer::new().dir("a").file(path, b"pwned").tar();
        assert_eq!(
            refused(sandbox.unpack(&tar)),
            Escape::ParentComponent,
            "{path}"
        );
    }
    sandbox.assert_nothing_outside();
}

#[test]
fn refuses_absolute_paths() {
    let sandbox = Sandbox::new();
    let evil = sandbox.outside().join("evil");
    let tar = Layer::new().file(evil.to_str().unwrap(), b"pwned").tar();
    assert_eq!(refused(sandbox.unpack(&tar)), Escape::AbsolutePath);
    sandbox.assert_nothing_outside();
}

#[test]
fn absolute_symlinks_resolve_inside_the_root() {
    let sandbox = Sandbox::new();
    let outside = sandbox.outside();
    let tar = Layer::new()
        .symlink("escape", outside.to_str().unwrap())
        .file("escape/pwned", b"pwned")
        .tar();
    sandbox.unpack(&tar).unwrap();
    // The link's target is read as if the root were `/`.
    let inside = sandbox.root().join(outside.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside.join("pwned")).unwrap(), b"pwned");
    sandbox.assert_nothing_outside();
    // Also when the link came from an earlier layer, and deeper in the path.
    let sandbox = Sandbox::new();
    let lower = Layer::new()
        .dir("etc")
        .symlink("etc/conf", outside.to_str().unwrap())
        .tar();
    sandbox.unpack(&lower).unwrap();
    let upper = Layer::new().file("etc/conf/sub/pwned", b"pwned").tar();
    sandbox.unpack(&upper).unwrap();
    let inside = sandbox.root().join(outside.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside.join("sub/pwned")).unwrap(), b"pwned");
    sandbox.assert_nothing_outside();
}

/// Debian's base layer has `var/run -> /run`; a later layer writing `var/run/x` must land in
/// the image's `/run` (it was refused as an escape before securejoin semantics).
#[test]
fn writes_through_debians_var_run_link() {
    let sandbox = Sandbox::new();
    let lower = Layer::new()
        .dir("run")
        .dir("var")
        .symlink("var/run", "/run")
        .tar();
    sandbox.unpack(&lower).unwrap();
    let upper = Layer::new().file("var/run/x.pid", b"1").tar();
    sandbox.unpack(&upper).unwrap();
    let root = sandbox.root();
    assert_eq!(fs::read(root.join("run/x.pid")).unwrap(), b"1");
    assert_eq!(
        fs::read_link(root.join("var/run")).unwrap(),
        Path::new("/run")
    );
    assert_eq!(sandbox.root_names(), ["run", "var"]);
    sandbox.assert_nothing_outside();
}

#[test]
fn relative_symlink_chains_are_clamped_at_the_root() {
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .dir("d")
        .symlink("one", "d/two")
        .symlink("d/two", "three")
        .symlink("d/three", "../../../outside")
        .file("one/pwned", b"pwned")
        .tar();
    sandbox.unpack(&tar).unwrap();
    // `..` stops at the root, as `/..` is `/`: `outside` is the root's own.
    assert_eq!(
        fs::read(sandbox.root().join("outside/pwned")).unwrap(),
        b"pwned"
    );
    sandbox.assert_nothing_outside();
    let sandbox = Sandbox::new();
    let looping = Layer::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"x")
        .tar();
    assert_eq!(refused(sandbox.unpack(&looping)), Escape::SymlinkLoop);
    sandbox.assert_nothing_outside();
}

#[test]
fn refuses_hardlink_escapes() {
    let sandbox = Sandbox::new();
    let tar = Layer::new().hardlink("stolen", "../outside/secret").tar();
    assert_eq!(refused(sandbox.unpack(&tar)), Escape::ParentComponent);
    let absolute = sandbox.outside().join("secret");
    let tar = Layer::new()
        .hardlink("stolen", absolute.to_str().unwrap())
        .tar();
    assert_eq!(refused(sandbox.unpack(&tar)), Escape::AbsolutePath);
    // Through a link climbing out, the source is looked for in the root, where there is none.
    let tar = Layer::new()
        .symlink("up", "..")
        .hardlink("stolen", "up/outside/secret")
        .tar();
    let error = sandbox.unpack(&tar).unwrap_err();
    assert!(
        matches!(&error, UnpackError::WriteEntry { source, .. } if source.kind() == io::ErrorKind::NotFound),
        "{error:?}"
    );
    // And when the root has one, that one is linked.
    let tar = Layer::new()
        .dir("outside")
        .file("outside/secret", b"mine")
        .symlink("up", "../..")
        .hardlink("stolen", "up/outside/secret")
        .tar();
    sandbox.unpack(&tar).unwrap();
    assert_eq!(fs::read(sandbox.root().join("stolen")).unwrap(), b"mine");
    sandbox.assert_nothing_outside();
}

#[test]
fn replaces_a_symlink_instead_of_writing_through_it() {
    let sandbox = Sandbox::new();
    let secret = sandbox.outside().join("secret");
    let lower = Layer::new()
        .symlink("config", secret.to_str().unwrap())
        .tar();
    sandbox.unpack(&lower).unwrap();
    let upper = Layer::new().file("config", b"mine").tar();
    sandbox.unpack(&upper).unwrap();
    assert_eq!(fs::read(sandbox.root().join("config")).unwrap(), b"mine");
    sandbox.assert_nothing_outside();
}

#[test]
fn follows_symlinks_that_stay_inside_and_keeps_leaf_links() {
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .dir("usr")
        .dir("usr/lib")
        .symlink("lib", "usr/lib")
        .dir("bin")
        .file("bin/busybox", b"\x7fELF")
        .symlink("bin/sh", "/bin/busybox")
        .symlink("bin/up", "../usr")
        .file("lib/libc.so", b"libc")
        .file("bin/up/lib/via-up", b"ok")
        .hardlink("bin/ash", "bin/busybox")
        .tar();
    let stats = sandbox.unpack(&tar).unwrap();
    let root = sandbox.root();
    assert_eq!(fs::read(root.join("usr/lib/libc.so")).unwrap(), b"libc");
    assert_eq!(fs::read(root.join("usr/lib/via-up")).unwrap(), b"ok");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(fs::read(root.join("bin/ash")).unwrap(), b"\x7fELF");
    assert_eq!((stats.files, stats.symlinks, stats.hardlinks), (3, 3, 1));
    assert_eq!(stats.bytes, 4 + 4 + 2);
    sandbox.assert_nothing_outside();
}

#[test]
fn whiteouts_and_opaque_dirs_apply_to_lower_layers() {
    let sandbox = Sandbox::new();
    let lower = Layer::new()
        .dir("a")
        .file("a/keep", b"keep")
        .file("a/gone", b"gone")
        .dir("a/tree")
        .file("a/tree/deep", b"deep")
        .dir("b")
        .file("b/x", b"x")
        .dir("b/sub")
        .file("b/sub/y", b"y")
        .file("c", b"c")
        .tar();
    sandbox.unpack(&lower).unwrap();
    let upper = Layer::new()
        .file("a/.wh.gone", b"")
        .file("a/.wh.tree", b"")
        .file(".wh.c", b"")
        .file(".wh.never-existed", b"")
        .dir("b")
        // The new file comes before the marker: the marker must keep it.
        .file("b/z", b"z")
        .file("b/.wh..wh..opq", b"")
        .file("nested/.wh.nothing", b"")
        .tar();
    let stats = sandbox.unpack(&upper).unwrap();
    let root = sandbox.root();
    let names = |dir: &str| {
        let mut names: Vec<_> = fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("a"), ["keep"]);
    assert_eq!(names("b"), ["z"]);
    assert_eq!(
        names(""),
        ["a", "b"],
        "whiteouts must not create what they hide"
    );
    assert_eq!(stats.whiteouts, 6);
    sandbox.assert_nothing_outside();
}

#[test]
fn refuses_whiteouts_of_dot_and_dotdot() {
    let sandbox = Sandbox::new();
    let tar = Layer::new().dir("a").file("a/.wh..", b"").tar();
    assert_eq!(refused(sandbox.unpack(&tar)), Escape::BadWhiteout);
    let tar = Layer::new().dir("a").file("a/.wh.", b"").tar();
    assert_eq!(refused(sandbox.unpack(&tar)), Escape::BadWhiteout);
    sandbox.assert_nothing_outside();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

#[test]
fn detects_compression_by_media_type_and_magic() {
    let tar = Layer::new().file("hello", b"world").tar();
    let cases = [
        (tar.clone(), LAYER_TAR),
        (gzip(&tar), LAYER_GZIP),
        (gzip(&tar), DOCKER_GZIP),
        (zstd(&tar), LAYER_ZSTD),
        // Mislabelled as a plain tar: the magic bytes decide.
        (gzip(&tar), LAYER_TAR),
        (zstd(&tar), LAYER_TAR),
        (zstd(&tar), "application/octet-stream"),
    ];
    for (blob, media_type) in cases {
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack_layer(
            blob.as_slice(),
            media_type,
            dir.path(),
            &UnpackOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{media_type}: {e:?}"));
        assert_eq!(stats.files, 1);
        assert_eq!(fs::read(dir.path().join("hello")).unwrap(), b"world");
        // The diff_id is the digest of the uncompressed tar, whatever the compression.
        assert_eq!(
            stats.diff_id,
            super::super::store::Digest::of(&tar).to_string()
        );
    }
    assert_eq!(
        detect_compression(LAYER_GZIP, &gzip(b"x")).unwrap(),
        Compression::Gzip
    );
    assert_eq!(
        detect_compression(LAYER_TAR, &zstd(b"x")).unwrap(),
        Compression::Zstd
    );
    assert_eq!(
        detect_compression(LAYER_TAR, b"hello").unwrap(),
        Compression::None
    );
}

#[test]
fn refuses_a_layer_whose_bytes_do_not_match_its_compression() {
    let tar = Layer::new().file("hello", b"world").tar();
    for media_type in [LAYER_GZIP, LAYER_ZSTD, DOCKER_GZIP] {
        let dir = tempfile::tempdir().unwrap();
        let error = unpack_layer(
            tar.as_slice(),
            media_type,
            dir.path(),
            &UnpackOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(error, UnpackError::DetectCompression { .. }),
            "{media_type}: {error:?}"
        );
    }
    // A truncated gzip stream is a read error, not a silent partial layer.
    let mut truncated = gzip(&Layer::new().file("big", &[7u8; 100_000]).tar());
    truncated.truncate(truncated.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let error = unpack_layer(
        truncated.as_slice(),
        LAYER_GZIP,
        dir.path(),
        &UnpackOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(error, UnpackError::ReadLayer { .. }), "{error:?}");
}

#[test]
fn layers_sharing_a_budget_stop_when_their_files_together_exceed_it() {
    // Two images of one snapshot, unpacked side by side onto roots of their own.
    let (first, second) = (Sandbox::new(), Sandbox::new());
    let options = UnpackOptions::default().with_budget(Arc::new(SizeBudget::new(1000)));
    let tar = Layer::new().file("a", &[1u8; 600]).tar();
    first.unpack_with(&tar, &options).unwrap();
    let error = second.unpack_with(&tar, &options).unwrap_err();
    assert!(
        matches!(&error, UnpackError::ExceedSize { limit: 1000, entry } if entry == Path::new("a")),
        "{error:?}"
    );
    // Refused before it was written.
    assert!(second.root_names().is_empty(), "{:?}", second.root_names());
}

#[test]
fn stops_at_the_byte_limit() {
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .file("a", &[1u8; 600])
        .file("b", &[2u8; 600])
        .tar();
    let error = sandbox
        .unpack_with(&tar, &UnpackOptions::default().with_max_bytes(1000))
        .unwrap_err();
    assert!(
        matches!(&error, UnpackError::ExceedSize { limit: 1000, entry } if entry == Path::new("b")),
        "{error:?}"
    );
}

#[test]
fn keeps_modes_and_owners_with_setuid_bits() {
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .owned_file("su", b"#!", 0o4755, 1000)
        .owned_file("secret", b"x", 0o600, 1000)
        .tar();
    sandbox.unpack(&tar).unwrap();
    let root = sandbox.root();
    let su = fs::metadata(root.join("su")).unwrap();
    let secret = fs::metadata(root.join("secret")).unwrap();
    assert_eq!(
        fs::metadata(root.join("secret"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    let as_root =
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(sandbox.outside()).unwrap()) == 0;
    if as_root {
        // chown comes before chmod: the setuid bit survives it.
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&su), 1000);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&secret), 1000);
        assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    }
}

#[test]
fn deferred_directory_modes_never_follow_a_later_symlink() {
    let sandbox = Sandbox::new();
    let outside = sandbox.outside();
    // `a/secret` is a directory of this layer until `a` becomes a link to the outside: its
    // mode, applied at the end of the layer, must not land on `outside/secret`.
    let tar = Layer::new()
        .dir("a")
        .dir("a/secret")
        .symlink("a", outside.to_str().unwrap())
        .dir("gone")
        .file(".wh.gone", b"")
        .tar();
    sandbox.unpack(&tar).unwrap();
    assert_eq!(
        fs::read_link(sandbox.root().join("a")).unwrap(),
        sandbox.outside()
    );
    sandbox.assert_nothing_outside();
}

#[test]
fn drops_setuid_and_setgid_when_the_owner_is_not_restored() {
    // The agent runs as root in production and often in tests, where chown always works:
    // the decision is checked on its own, then end to end when chown is refused.
    let refused = owner_restored(Err(io::ErrorKind::PermissionDenied.into())).unwrap();
    assert!(!refused);
    assert!(owner_restored(Ok(())).unwrap());
    assert!(owner_restored(Err(io::ErrorKind::NotFound.into())).is_err());
    assert_eq!(mode_to_apply(0o4755, refused), 0o755);
    assert_eq!(mode_to_apply(0o2775, refused), 0o775);
    assert_eq!(
        mode_to_apply(0o1777, refused),
        0o1777,
        "sticky is no privilege"
    );
    assert_eq!(mode_to_apply(0o6755, true), 0o6755);

    let sandbox = Sandbox::new();
    let as_root =
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(sandbox.outside()).unwrap()) == 0;
    if !as_root {
        let stranger = 4242;
        let tar = Layer::new()
            .owned(tar::EntryType::Directory, "shared", b"", 0o2775, stranger)
            .owned_file("su", b"#!", 0o4755, stranger)
            .tar();
        sandbox.unpack(&tar).unwrap();
        let mode = |name: &str| {
            fs::metadata(sandbox.root().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("su"), 0o755);
        assert_eq!(mode("shared"), 0o775);
    }
}

/// A PAX record `LEN KEY=VALUE\n`, whose length counts its own digits.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

#[test]
fn reads_long_names_and_pax_headers_of_real_sizes() {
    let sandbox = Sandbox::new();
    let long = format!("deep/{}/{}/file", "n".repeat(150), "m".repeat(150));
    let tar = Layer::new()
        .gnu_entry(
            tar::EntryType::GNULongName,
            "././@LongLink",
            long.as_bytes(),
        )
        .gnu_entry(tar::EntryType::Regular, "short", b"long")
        .pax_entry(&pax_record("path", "pax/named"))
        .file("other", b"pax")
        .tar();
    let stats = sandbox.unpack(&tar).unwrap();
    assert_eq!(fs::read(sandbox.root().join(&long)).unwrap(), b"long");
    assert_eq!(fs::read(sandbox.root().join("pax/named")).unwrap(), b"pax");
    assert_eq!(stats.files, 2);
}

#[test]
fn refuses_long_names_and_pax_headers_over_the_header_budget() {
    let big = 2 << 20;
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .gnu_entry(
            tar::EntryType::GNULongName,
            "././@LongLink",
            &vec![b'n'; big],
        )
        .gnu_entry(tar::EntryType::Regular, "short", b"x")
        .tar();
    let error = sandbox.unpack(&tar).unwrap_err();
    assert!(
        matches!(
            error,
            UnpackError::HeaderTooLarge {
                limit: MAX_HEADER_BYTES
            }
        ),
        "{error:?}"
    );
    let value = "v".repeat(big);
    let tar = Layer::new()
        .pax_entry(&pax_record("comment", &value))
        .file("short", b"x")
        .tar();
    let error = sandbox.unpack(&tar).unwrap_err();
    assert!(
        matches!(error, UnpackError::HeaderTooLarge { .. }),
        "{error:?}"
    );
    assert!(sandbox.root_names().is_empty());
    sandbox.assert_nothing_outside();
}

#[test]
fn refuses_a_gigabyte_long_name_after_reading_about_the_budget() {
    // The stream is made as it is read: the test holds no gigabyte, and what is left of it
    // afterwards shows how far the unpacker read.
    let size: u64 = 1 << 30;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::GNULongName);
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let mut stream = io::Cursor::new(header.as_bytes().to_vec()).chain(io::repeat(b'n').take(size));
    let sandbox = Sandbox::new();
    let error = unpack_layer(
        BufReader::new(&mut stream),
        LAYER_TAR,
        &sandbox.root(),
        &UnpackOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, UnpackError::HeaderTooLarge { .. }),
        "{error:?}"
    );
    let (_, rest) = stream.into_inner();
    let read = size - rest.limit();
    assert!(read < MAX_HEADER_BYTES + 64 * 1024, "read {read} bytes");
}

#[test]
fn stops_at_the_entry_limit() {
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .dir("d")
        .file("d/a", b"a")
        .file("d/b", b"b")
        .file("d/c", b"c")
        .tar();
    let mut options = UnpackOptions::default();
    options.limits.entries = 3;
    let error = sandbox.unpack_with(&tar, &options).unwrap_err();
    assert!(
        matches!(error, UnpackError::TooManyEntries { limit: 3 }),
        "{error:?}"
    );
    assert!(!sandbox.root().join("d/c").exists());
    options.limits.entries = 4;
    Sandbox::new().unpack_with(&tar, &options).unwrap();
}

#[test]
fn stops_at_the_stream_and_trailer_limits() {
    let tar = Layer::new().file("a", &[1u8; 600]).tar();
    let mut options = UnpackOptions::default();
    // Exactly the stream's length passes; one byte less does not.
    options.limits.stream_bytes = tar.len() as u64;
    Sandbox::new().unpack_with(&tar, &options).unwrap();
    options.limits.stream_bytes = tar.len() as u64 - 1;
    let error = Sandbox::new().unpack_with(&tar, &options).unwrap_err();
    assert!(
        matches!(error, UnpackError::ExceedStream { .. }),
        "{error:?}"
    );
    // Record padding after the end-of-archive marker is fine, megabytes of it are not.
    let mut padded = tar.clone();
    padded.resize(tar.len() + 10240, 0);
    let stats = Sandbox::new()
        .unpack_with(&padded, &UnpackOptions::default())
        .unwrap();
    assert_eq!(
        stats.diff_id,
        super::super::store::Digest::of(&padded).to_string()
    );
    padded.resize(tar.len() + 2 * MAX_TRAILING_BYTES as usize, 0);
    let error = Sandbox::new()
        .unpack_with(&padded, &UnpackOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            error,
            UnpackError::TrailingData {
                limit: MAX_TRAILING_BYTES
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_raised_cancel_flag_stops_the_unpack() {
    let sandbox = Sandbox::new();
    let tar = Layer::new().dir("d").file("d/a", b"a").tar();
    let cancel = Arc::new(AtomicBool::new(true));
    let options = UnpackOptions::default().with_cancel(Arc::clone(&cancel));
    let error = sandbox.unpack_with(&tar, &options).unwrap_err();
    assert!(matches!(error, UnpackError::Cancelled), "{error:?}");
    assert!(sandbox.root_names().is_empty());

    // Raised while a file is being read: the unpack stops there.
    struct RaiseAfter<'a> {
        data: &'a [u8],
        after: usize,
        read: usize,
        flag: Arc<AtomicBool>,
    }
    impl io::Read for RaiseAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.read >= self.after {
                self.flag.store(true, Ordering::Relaxed);
            }
            let len = buf.len().min(512);
            let n = self.data.read(&mut buf[..len])?;
            self.read += n;
            Ok(n)
        }
    }
    let tar = Layer::new()
        .file("first", &[1u8; 1024])
        .file("second", &[2u8; 1024])
        .tar();
    cancel.store(false, Ordering::Relaxed);
    let reader = RaiseAfter {
        data: &tar,
        after: 1024,
        read: 0,
        flag: Arc::clone(&cancel),
    };
    let sandbox = Sandbox::new();
    let error = unpack_layer(
        BufReader::with_capacity(512, reader),
        LAYER_TAR,
        &sandbox.root(),
        &options,
    )
    .unwrap_err();
    assert!(matches!(error, UnpackError::Cancelled), "{error:?}");
    assert!(!sandbox.root().join("second").exists());
}
