//! The shared-library closure of an ELF executable: what a FROM-scratch image must contain for
//! the binary to start.
//!
//! Resolved the way the dynamic loader does it (DT_NEEDED, searched through RPATH,
//! LD_LIBRARY_PATH, RUNPATH, ld.so.conf and the system directories), without running the binary
//! or `ldd`, so it works for any path and for a binary that is not the running one.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use goblin::elf::{header, Elf};

/// What the loader of one binary needs, as host paths. Each library sits at the path the loader
/// finds it under (a soname in a search directory), which is where the image puts it too.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Closure {
    /// PT_INTERP: `/lib64/ld-linux-x86-64.so.2` on x86_64 glibc; None for a static binary.
    pub interpreter: Option<PathBuf>,
    /// Every library, transitively, in discovery order.
    pub libraries: Vec<PathBuf>,
}

impl Closure {
    /// The directories holding the libraries, for the image's `LD_LIBRARY_PATH`: without an
    /// `ld.so.cache` in the image, a library found here through ld.so.conf or `$ORIGIN` would
    /// otherwise be invisible to the loader.
    pub fn library_dirs(&self) -> Vec<PathBuf> {
        let mut seen = BTreeSet::new();
        self.libraries
            .iter()
            .filter_map(|l| l.parent().map(Path::to_path_buf))
            .filter(|d| seen.insert(d.clone()))
            .collect()
    }
}

/// Which objects a library must match to be loadable by this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    is_64: bool,
    machine: u16,
}

/// Resolves the closure of `binary`.
pub(crate) fn resolve(binary: &Path) -> Result<Closure, String> {
    let bytes = std::fs::read(binary).map_err(|e| format!("cannot read it: {e}"))?;
    let elf = Elf::parse(&bytes).map_err(|e| format!("not an ELF executable: {e}"))?;
    let kind = Kind {
        is_64: elf.is_64,
        machine: elf.header.e_machine,
    };
    let interpreter = elf.interpreter.map(PathBuf::from);
    if let Some(interp) = &interpreter {
        if !interp.is_file() {
            return Err(format!(
                "its ELF interpreter {} does not exist here",
                interp.display()
            ));
        }
    }
    let system = system_dirs(kind, interpreter.as_deref());
    let env_dirs: Vec<PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .map(|v| split_path_list(&v, None))
        .unwrap_or_default();

    let mut closure = Closure {
        interpreter,
        libraries: Vec::new(),
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<(String, Needer)> = VecDeque::new();
    let root = Needer::of(&elf, binary);
    for name in &elf.libraries {
        queue.push_back((name.to_string(), root.clone()));
    }
    while let Some((name, needer)) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let path = find(&name, &needer, &env_dirs, &system, kind).ok_or_else(|| {
            format!(
                "library {name} (needed by {}) is not found in {}",
                needer.path.display(),
                needer
                    .search_order(&env_dirs, &system)
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            )
        })?;
        let lib_bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let lib = Elf::parse(&lib_bytes)
            .map_err(|e| format!("{} is not an ELF library: {e}", path.display()))?;
        let next = Needer::of(&lib, &path);
        for dep in &lib.libraries {
            queue.push_back((dep.to_string(), next.clone()));
        }
        closure.libraries.push(path);
    }
    Ok(closure)
}

/// The object whose DT_NEEDED is being resolved: its location (for `$ORIGIN`) and search paths.
#[derive(Debug, Clone)]
struct Needer {
    path: PathBuf,
    rpath: Vec<PathBuf>,
    runpath: Vec<PathBuf>,
}

impl Needer {
    fn of(elf: &Elf<'_>, path: &Path) -> Needer {
        let origin = path.parent().unwrap_or(Path::new("/"));
        let list = |entries: &[&str]| -> Vec<PathBuf> {
            entries
                .iter()
                .flat_map(|e| split_path_list(e, Some(origin)))
                .collect()
        };
        Needer {
            path: path.to_path_buf(),
            rpath: list(&elf.rpaths),
            runpath: list(&elf.runpaths),
        }
    }

    /// ld.so(8): DT_RPATH (only when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, then
    /// the cache and the default directories (`system`).
    fn search_order(&self, env_dirs: &[PathBuf], system: &[PathBuf]) -> Vec<PathBuf> {
        let mut order = Vec::new();
        if self.runpath.is_empty() {
            order.extend(self.rpath.iter().cloned());
        }
        order.extend(env_dirs.iter().cloned());
        order.extend(self.runpath.iter().cloned());
        order.extend(system.iter().cloned());
        order
    }
}

fn find(
    name: &str,
    needer: &Needer,
    env_dirs: &[PathBuf],
    system: &[PathBuf],
    kind: Kind,
) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return matches_kind(&path, kind).then_some(path);
    }
    needer
        .search_order(env_dirs, system)
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| matches_kind(candidate, kind))
}

/// A candidate must be an ELF object of the binary's class and machine: `/usr/lib` may hold a
/// 32-bit library of the same name, which the loader would skip too.
fn matches_kind(path: &Path, kind: Kind) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file.read_exact(&mut head).is_err() {
        return false;
    }
    match Elf::parse_header(&head) {
        Ok(h) => {
            let is_64 = h.e_ident[header::EI_CLASS] == header::ELFCLASS64;
            is_64 == kind.is_64 && h.e_machine == kind.machine
        }
        Err(_) => false,
    }
}

/// A colon-separated directory list, with `$ORIGIN` expanded when an origin is given.
fn split_path_list(list: &str, origin: Option<&Path>) -> Vec<PathBuf> {
    list.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| match origin {
            Some(o) => PathBuf::from(
                d.replace("${ORIGIN}", &o.to_string_lossy())
                    .replace("$ORIGIN", &o.to_string_lossy()),
            ),
            None => PathBuf::from(d),
        })
        .collect()
}

/// The loader's own search directories: those ld.so.conf lists (what `ldconfig` put in the
/// cache), the multiarch and lib64 defaults, and the interpreter's own directory.
fn system_dirs(kind: Kind, interpreter: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    if let Some(triple) = multiarch(kind) {
        dirs.push(PathBuf::from(format!("/lib/{triple}")));
        dirs.push(PathBuf::from(format!("/usr/lib/{triple}")));
    }
    if kind.is_64 {
        dirs.push(PathBuf::from("/lib64"));
        dirs.push(PathBuf::from("/usr/lib64"));
    }
    dirs.push(PathBuf::from("/lib"));
    dirs.push(PathBuf::from("/usr/lib"));
    if let Some(dir) = interpreter.and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
    }
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// Debian's multiarch directory name for the machine.
fn multiarch(kind: Kind) -> Option<&'static str> {
    match (kind.machine, kind.is_64) {
        (header::EM_X86_64, true) => Some("x86_64-linux-gnu"),
        (header::EM_AARCH64, true) => Some("aarch64-linux-gnu"),
        (header::EM_386, false) => Some("i386-linux-gnu"),
        (header::EM_ARM, false) => Some("arm-linux-gnueabihf"),
        _ => None,
    }
}

/// `/etc/ld.so.conf`: one directory per line, `include GLOB` lines (only the `DIR/*SUFFIX`
/// form that distributions use), `#` comments.
fn read_ld_so_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    if depth > 4 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include") {
            let pattern = pattern.trim();
            let pattern = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                path.parent().unwrap_or(Path::new("/")).join(pattern)
            };
            for file in glob_star(&pattern) {
                read_ld_so_conf(&file, dirs, depth + 1);
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// Expands `DIR/PREFIX*SUFFIX` (one `*` in the file name), sorted as glob(3) does.
fn glob_star(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_expanded_in_both_spellings() {
        let dirs = split_path_list("$ORIGIN/../lib:${ORIGIN}/x::/opt", Some(Path::new("/a/b")));
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/a/b/../lib"),
                PathBuf::from("/a/b/x"),
                PathBuf::from("/opt")
            ]
        );
    }

    #[test]
    fn runpath_disables_rpath_and_follows_ld_library_path() {
        let needer = Needer {
            path: "/bin/x".into(),
            rpath: vec!["/rpath".into()],
            runpath: vec!["/runpath".into()],
        };
        let order = needer.search_order(&["/env".into()], &["/lib".into()]);
        assert_eq!(
            order,
            vec![
                PathBuf::from("/env"),
                PathBuf::from("/runpath"),
                PathBuf::from("/lib")
            ]
        );
    }

    /// The running test binary is a dynamically linked executable of this machine: its closure
    /// must include the loader and libc, each at a path that exists.
    #[test]
    fn closure_of_a_real_binary_has_loader_and_libc() {
        let exe = std::env::current_exe().unwrap();
        let closure = resolve(&exe).unwrap();
        let Some(interp) = &closure.interpreter else {
            return; // a static build: nothing to check
        };
        assert!(interp.is_file());
        assert!(
            closure
                .libraries
                .iter()
                .any(|l| l.file_name().is_some_and(|n| n == "libc.so.6")),
            "{closure:?}"
        );
        assert!(closure.libraries.iter().all(|l| l.is_file()));
        assert!(!closure.library_dirs().is_empty());
    }

    #[test]
    fn a_non_elf_file_is_refused() {
        let err = resolve(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/Cargo.toml"
        )))
        .unwrap_err();
        assert!(err.contains("not an ELF"), "{err}");
    }
}
