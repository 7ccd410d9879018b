//! What a container runs and how: its process (command, env, working dir, user), the group's
//! `/etc` files, and the OCI runtime spec (`config.json`) of its bundle.

use std::{
    fmt::Write as _,
    path::{Component, Path, PathBuf},
};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder, get_default_namespaces,
};

use super::{ImageRunConfig, RuntimeError, pb};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user a container's processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
}

/// The process of a container, resolved from its spec and its image.
#[derive(Debug, Clone)]
pub(crate) struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
}

/// Command = spec command, else the image entrypoint; args = spec args, else (only when the
/// spec gives no command) the image cmd — the Kubernetes rules.
pub(crate) fn command_of(spec: &pb::ContainerSpec, image: &ImageRunConfig) -> Vec<String> {
    let mut argv = if spec.command.is_empty() {
        image.entrypoint.clone()
    } else {
        spec.command.clone()
    };
    if !spec.args.is_empty() {
        argv.extend(spec.args.iter().cloned());
    } else if spec.command.is_empty() {
        argv.extend(image.cmd.iter().cloned());
    }
    argv
}

/// The image env overlaid by the request env (same name: the request wins, in place).
pub(crate) fn env_of(
    spec: &pb::ContainerSpec,
    image: &ImageRunConfig,
    hostname: &str,
) -> Vec<String> {
    let mut env: Vec<String> = image.env.clone();
    let name_of = |entry: &str| entry.split_once('=').map_or(entry, |(n, _)| n).to_owned();
    for var in &spec.env {
        let entry = format!("{}={}", var.name, var.value);
        match env.iter_mut().find(|e| name_of(e) == var.name) {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }
    if !env.iter().any(|e| name_of(e) == "PATH") {
        env.insert(0, DEFAULT_PATH.to_owned());
    }
    if !env.iter().any(|e| name_of(e) == "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

/// Resolves the user: `run_as_user`, else the image's `uid[:gid]` or `name[:group]`, names
/// looked up in the image's `/etc/passwd` and `/etc/group` (blocking).
pub(crate) fn resolve_user(
    rootfs: &Path,
    run_as_user: Option<i64>,
    image_user: &str,
) -> Result<ResolvedUser, RuntimeError> {
    if let Some(uid) = run_as_user {
        let uid = u32::try_from(uid)
            .map_err(|_| RuntimeError::invalid(format!("run_as_user {uid} is not a valid uid")))?;
        let gid = passwd_entries(rootfs)
            .into_iter()
            .find(|e| e.uid == uid)
            .map_or(0, |e| e.gid);
        return Ok(ResolvedUser { uid, gid });
    }
    if image_user.is_empty() {
        return Ok(ResolvedUser::default());
    }
    let (user, group) = match image_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (image_user, None),
    };
    let entry = if let Ok(uid) = user.parse::<u32>() {
        passwd_entries(rootfs)
            .into_iter()
            .find(|e| e.uid == uid)
            .unwrap_or(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
            })
    } else {
        passwd_entries(rootfs)
            .into_iter()
            .find(|e| e.name == user)
            .ok_or_else(|| {
                RuntimeError::invalid(format!(
                    "user {user:?} of the image is not in its /etc/passwd"
                ))
            })?
    };
    let gid = match group {
        None => entry.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_gid(rootfs, g).ok_or_else(|| {
                RuntimeError::invalid(format!("group {g:?} of the image is not in its /etc/group"))
            })?,
        },
    };
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
    })
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// Largest `/etc/passwd` or `/etc/group` read from an image.
const MAX_IMAGE_FILE: u64 = 4 << 20;

/// A regular file of the image (at most [`MAX_IMAGE_FILE`] bytes), resolved as if `rootfs`
/// were `/`: an absolute symlink (`etc -> /realetc`) stays inside the rootfs and `..` stops
/// at it (`RESOLVE_IN_ROOT`, what runc's securejoin does for a bundle), so an image's `etc`
/// pointing at a host directory never makes the agent read the host's files. `None` when
/// absent, not a regular file or unreadable: the image has no such names.
fn read_image_file(rootfs: &Path, relative: &str) -> Option<String> {
    use std::io::Read as _;

    use nix::fcntl::{AT_FDCWD, OFlag, OpenHow, ResolveFlag};

    let root = nix::fcntl::openat(
        AT_FDCWD,
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let how = OpenHow::new()
        // O_NONBLOCK: a FIFO planted as etc/passwd does not hang the open.
        .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let file = std::fs::File::from(nix::fcntl::openat2(&root, relative, how).ok()?);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_IMAGE_FILE).read_to_string(&mut text).ok()?;
    Some(text)
}

fn passwd_entries(rootfs: &Path) -> Vec<PasswdEntry> {
    read_image_file(rootfs, "etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.to_owned();
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(PasswdEntry { name, uid, gid })
        })
        .collect()
}

fn group_gid(rootfs: &Path, name: &str) -> Option<u32> {
    read_image_file(rootfs, "etc/group")?
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next()? == name).then_some(())?;
            let _password = fields.next()?;
            fields.next()?.parse().ok()
        })
}

/// The working dir: the spec's, else the image's, else `/`; always absolute.
pub(crate) fn cwd_of(spec: &pb::ContainerSpec, image: &ImageRunConfig) -> String {
    let dir = if spec.working_dir.is_empty() {
        image.working_dir.as_str()
    } else {
        spec.working_dir.as_str()
    };
    if dir.starts_with('/') {
        dir.to_owned()
    } else {
        format!("/{dir}")
    }
}

/// `/etc/hosts` of a group.
pub(crate) fn hosts_file(ip: &str, hostname: &str, aliases: &[pb::HostAlias]) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let _ = writeln!(text, "{ip}\t{hostname}");
    for alias in aliases {
        if !alias.hostnames.is_empty() {
            let _ = writeln!(text, "{}\t{}", alias.ip, alias.hostnames.join(" "));
        }
    }
    text
}

/// `/etc/resolv.conf` of a group: the request's DNS config, else the host's file.
pub(crate) fn resolv_conf(request: &pb::CreateGroupRequest, host: &str) -> String {
    if request.dns_name_servers.is_empty()
        && request.dns_searches.is_empty()
        && request.dns_options.is_empty()
    {
        return host.to_owned();
    }
    let mut text = String::new();
    for server in &request.dns_name_servers {
        let _ = writeln!(text, "nameserver {server}");
    }
    if !request.dns_searches.is_empty() {
        let _ = writeln!(text, "search {}", request.dns_searches.join(" "));
    }
    if !request.dns_options.is_empty() {
        let _ = writeln!(text, "options {}", request.dns_options.join(" "));
    }
    text
}

/// A path inside a volume or rootfs given by a request: relative, no `..`, no root.
pub(crate) fn safe_relative(path: &str, what: &str) -> Result<PathBuf, RuntimeError> {
    let relative = Path::new(path);
    if path.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(RuntimeError::invalid(format!(
            "{what} {path:?} must be a relative path without `..`"
        )));
    }
    Ok(relative.to_owned())
}

/// A bind mount of `source` at `destination` in the container.
pub(crate) fn bind_mount(
    source: &Path,
    destination: &str,
    read_only: bool,
) -> Result<Mount, oci_spec::OciSpecError> {
    let mode = if read_only { "ro" } else { "rw" };
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(vec![
            "rbind".to_owned(),
            "rprivate".to_owned(),
            mode.to_owned(),
        ])
        .build()
}

/// Everything a bundle's `config.json` says.
#[derive(Debug)]
pub(crate) struct BundlePlan<'a> {
    pub rootfs: &'a Path,
    pub process: &'a ProcessPlan,
    pub hostname: &'a str,
    pub netns: PathBuf,
    pub cgroups_path: String,
    /// CPU cores; 0 for no limit.
    pub cpu: f64,
    /// Bytes; 0 for no limit.
    pub memory_bytes: i64,
    pub mounts: Vec<Mount>,
    /// The process runs on a terminal.
    pub terminal: bool,
    /// The root filesystem is mounted read-only (`SecurityContext.ReadOnlyRootFilesystem`).
    pub read_only_root: bool,
    /// Capabilities added to the default set (`SecurityContext.Capability.Add.N`).
    pub capability_add: Vec<Capability>,
    /// Every capability, no `no_new_privileges` (`SecurityContextPrivileged`).
    pub privileged: bool,
}

/// The capabilities a request adds, by name with or without `CAP_` (`NET_ADMIN`,
/// `cap_net_admin`).
///
/// # Errors
/// [`RuntimeError::InvalidRequest`] naming the first unknown capability.
pub(crate) fn capabilities_of(names: &[String]) -> Result<Vec<Capability>, RuntimeError> {
    names
        .iter()
        .map(|name| {
            let upper = name.trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            bare.parse::<Capability>()
                .map_err(|_| RuntimeError::invalid(format!("unknown capability {name:?}")))
        })
        .collect()
}

/// Applies `SecurityContextRunAsGroup` and checks `SecurityContextRunAsNonRoot` on the
/// resolved user.
///
/// # Errors
/// [`RuntimeError::InvalidRequest`] when the group is not a valid gid, or the container must
/// not run as root and would.
pub(crate) fn secure_user(
    mut user: ResolvedUser,
    spec: &pb::ContainerSpec,
) -> Result<ResolvedUser, RuntimeError> {
    if let Some(gid) = spec.run_as_group {
        user.gid = u32::try_from(gid)
            .map_err(|_| RuntimeError::invalid(format!("run_as_group {gid} is not a valid gid")))?;
    }
    if spec.run_as_non_root && user.uid == 0 {
        return Err(RuntimeError::invalid(format!(
            "container {}: runAsNonRoot is set and it would run as root (uid 0)",
            spec.name
        )));
    }
    Ok(user)
}

/// The capabilities of a container: the usual default set of container engines.
fn capabilities() -> std::collections::HashSet<Capability> {
    [
        Capability::Chown,
        Capability::DacOverride,
        Capability::Fsetid,
        Capability::Fowner,
        Capability::Mknod,
        Capability::NetRaw,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setfcap,
        Capability::Setpcap,
        Capability::NetBindService,
        Capability::SysChroot,
        Capability::Kill,
        Capability::AuditWrite,
    ]
    .into_iter()
    .collect()
}

/// Every capability the runtime knows: what a privileged container gets.
fn all_capabilities() -> Vec<Capability> {
    oci_spec::runtime::Spec::default()
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone())
        .into_iter()
        .flatten()
        .chain([
            Capability::SysAdmin,
            Capability::NetAdmin,
            Capability::SysPtrace,
            Capability::SysModule,
            Capability::SysResource,
            Capability::SysTime,
            Capability::IpcLock,
            Capability::IpcOwner,
            Capability::DacReadSearch,
            Capability::LinuxImmutable,
            Capability::NetBroadcast,
            Capability::SysBoot,
            Capability::SysNice,
            Capability::SysPacct,
            Capability::SysRawio,
            Capability::SysTtyConfig,
            Capability::Lease,
            Capability::AuditControl,
            Capability::Syslog,
            Capability::WakeAlarm,
            Capability::BlockSuspend,
        ])
        .collect()
}

/// The OCI runtime spec of a container.
pub(crate) fn spec(plan: &BundlePlan<'_>) -> Result<Spec, oci_spec::OciSpecError> {
    let mut caps = capabilities();
    caps.extend(plan.capability_add.iter().copied());
    if plan.privileged {
        caps.extend(all_capabilities());
    }
    let process = ProcessBuilder::default()
        .terminal(plan.terminal)
        .args(plan.process.args.clone())
        .env(plan.process.env.clone())
        .cwd(plan.process.cwd.clone())
        .user(
            UserBuilder::default()
                .uid(plan.process.user.uid)
                .gid(plan.process.user.gid)
                .build()?,
        )
        .capabilities(
            oci_spec::runtime::LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()?,
        )
        .no_new_privileges(!plan.privileged)
        .build()?;
    let namespaces: Vec<LinuxNamespace> = get_default_namespaces()
        .into_iter()
        .map(|ns| {
            if ns.typ() == LinuxNamespaceType::Network {
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .path(plan.netns.clone())
                    .build()
            } else {
                Ok(ns)
            }
        })
        .collect::<Result<_, _>>()?;
    let mut resources = LinuxResourcesBuilder::default().devices(vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?,
    ]);
    if plan.cpu > 0.0 {
        const PERIOD: u64 = 100_000;
        #[allow(clippy::cast_possible_truncation)] // cores of a spec: small, positive
        let quota = (plan.cpu * PERIOD as f64).ceil() as i64;
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .period(PERIOD)
                .quota(quota.max(1000))
                .build()?,
        );
    }
    if plan.memory_bytes > 0 {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(plan.memory_bytes)
                .build()?,
        );
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&plan.cgroups_path))
        .resources(resources.build()?)
        .build()?;
    let defaults = Spec::default();
    let mut mounts = defaults.mounts().clone().unwrap_or_default();
    mounts.extend(plan.mounts.iter().cloned());
    let mut spec = defaults;
    spec.set_process(Some(process))
        .set_root(Some(
            RootBuilder::default()
                .path(plan.rootfs)
                .readonly(plan.read_only_root)
                .build()?,
        ))
        .set_hostname(Some(plan.hostname.to_owned()))
        .set_mounts(Some(mounts));
    // Keep the default masked and read-only paths of `Linux::default`.
    let mut full = oci_spec::runtime::Linux::default();
    full.set_namespaces(linux.namespaces().clone())
        .set_cgroups_path(linux.cgroups_path().clone())
        .set_resources(linux.resources().clone());
    spec.set_linux(Some(full));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(command: &[&str], args: &[&str]) -> pb::ContainerSpec {
        pb::ContainerSpec {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            ..pb::ContainerSpec::default()
        }
    }

    fn image() -> ImageRunConfig {
        ImageRunConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..ImageRunConfig::default()
        }
    }

    #[test]
    fn command_follows_kubernetes_rules() {
        assert_eq!(
            command_of(&container(&[], &[]), &image()),
            ["/entry", "default"]
        );
        assert_eq!(
            command_of(&container(&[], &["x"]), &image()),
            ["/entry", "x"]
        );
        assert_eq!(command_of(&container(&["sh"], &[]), &image()), ["sh"]);
        assert_eq!(
            command_of(&container(&["sh"], &["-c", "x"]), &image()),
            ["sh", "-c", "x"]
        );
    }

    #[test]
    fn request_env_overlays_image_env() {
        let mut spec = container(&[], &[]);
        spec.env = vec![
            pb::EnvVar {
                name: "A".into(),
                value: "2".into(),
            },
            pb::EnvVar {
                name: "B".into(),
                value: "3".into(),
            },
        ];
        assert_eq!(
            env_of(&spec, &image(), "h"),
            ["PATH=/bin", "A=2", "B=3", "HOSTNAME=h"]
        );
    }

    #[test]
    fn users_resolve_from_the_image() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nweb:x:33:44::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let r = |run_as, user| resolve_user(root.path(), run_as, user);
        assert_eq!(r(None, "").unwrap(), ResolvedUser { uid: 0, gid: 0 });
        assert_eq!(r(None, "web").unwrap(), ResolvedUser { uid: 33, gid: 44 });
        assert_eq!(
            r(None, "web:staff").unwrap(),
            ResolvedUser { uid: 33, gid: 50 }
        );
        assert_eq!(
            r(None, "1000:7").unwrap(),
            ResolvedUser { uid: 1000, gid: 7 }
        );
        assert_eq!(
            r(Some(33), "root").unwrap(),
            ResolvedUser { uid: 33, gid: 44 }
        );
        assert!(r(None, "nobody-here").is_err());
        assert!(r(Some(-1), "").is_err());
    }

    #[test]
    fn users_never_resolve_through_a_link_out_of_the_image() {
        let tmp = tempfile::tempdir().unwrap();
        let host_etc = tmp.path().join("host/etc");
        std::fs::create_dir_all(&host_etc).unwrap();
        std::fs::write(host_etc.join("passwd"), "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        std::fs::write(host_etc.join("group"), "evil:x:4242:\n").unwrap();
        let rootfs = tmp.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        std::os::unix::fs::symlink(&host_etc, rootfs.join("etc")).unwrap();
        assert!(resolve_user(&rootfs, None, "evil").is_err());
        assert_eq!(
            resolve_user(&rootfs, Some(4242), "").unwrap(),
            ResolvedUser { uid: 4242, gid: 0 },
            "no gid from the host's passwd"
        );
        assert!(resolve_user(&rootfs, None, "0:evil").is_err());
        // An absolute link resolves inside the rootfs, as in the container.
        std::fs::remove_file(rootfs.join("etc")).unwrap();
        std::fs::create_dir(rootfs.join("realetc")).unwrap();
        std::fs::write(rootfs.join("realetc/passwd"), "web:x:33:44::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/realetc", rootfs.join("etc")).unwrap();
        assert_eq!(
            resolve_user(&rootfs, None, "web").unwrap(),
            ResolvedUser { uid: 33, gid: 44 }
        );
        // `..` stops at the rootfs too.
        std::fs::remove_file(rootfs.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../host/etc", rootfs.join("etc")).unwrap();
        assert!(resolve_user(&rootfs, None, "evil").is_err());
    }

    #[test]
    fn added_capabilities_parse_with_or_without_the_prefix() {
        let names = ["NET_ADMIN".to_owned(), "cap_sys_ptrace".to_owned()];
        assert_eq!(
            capabilities_of(&names).unwrap(),
            [Capability::NetAdmin, Capability::SysPtrace]
        );
        assert!(capabilities_of(&["FLY".to_owned()]).is_err());
    }

    #[test]
    fn run_as_group_overrides_and_non_root_refuses_uid_zero() {
        let mut spec = container(&["sh"], &[]);
        spec.run_as_group = Some(3000);
        let user = secure_user(ResolvedUser { uid: 1000, gid: 7 }, &spec).unwrap();
        assert_eq!(
            user,
            ResolvedUser {
                uid: 1000,
                gid: 3000
            }
        );
        spec.run_as_non_root = true;
        assert!(secure_user(ResolvedUser { uid: 0, gid: 0 }, &spec).is_err());
        assert!(secure_user(ResolvedUser { uid: 5, gid: 0 }, &spec).is_ok());
    }

    #[test]
    fn relative_paths_cannot_escape() {
        assert!(safe_relative("a/b", "p").is_ok());
        assert!(safe_relative("../a", "p").is_err());
        assert!(safe_relative("a/../../b", "p").is_err());
        assert!(safe_relative("/etc", "p").is_err());
        assert!(safe_relative("", "p").is_err());
    }
}
