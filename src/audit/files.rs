//! Where a trail lives on disk, and how a folder of trails is read back.
//!
//! `audit.file` is a pattern: with replica `pod-a`, `audit/cancelguard.jsonl`
//! becomes the active file `audit/cancelguard-pod-a.jsonl`, and rotation
//! renames it to `audit/cancelguard-pod-a-20261203T181500.123456Z.jsonl`.
//! So the trails of several replicas can be gathered in one folder without
//! clashing, and a folder sorts back into one chain per replica: its
//! rotated files by timestamp, then its active file.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Longest replica name kept; longer names are cut.
const MAX_REPLICA_LEN: usize = 64;

/// Length of a rotation stamp such as `20261203T181500.123456Z`.
const STAMP_LEN: usize = 23;

/// The replica name when `audit.replica` is not set: the `HOSTNAME`
/// variable (a pod's name on Kubernetes), else `/etc/hostname`, else
/// `local`; cut down to the characters a file name may safely hold.
pub fn default_replica() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_file = || std::fs::read_to_string("/etc/hostname").ok();
    let name = from_env
        .filter(|n| !n.trim().is_empty())
        .or_else(from_file)
        .map(|n| sanitize_replica(n.trim()))
        .unwrap_or_default();
    if name.is_empty() {
        "local".into()
    } else {
        name
    }
}

/// True when `name` may be used as a replica name as it is.
pub fn is_valid_replica(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_REPLICA_LEN
        && name.bytes().all(is_replica_byte)
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
pub fn sanitize_replica(name: &str) -> String {
    name.bytes()
        .take(MAX_REPLICA_LEN)
        .map(|b| if is_replica_byte(b) { b as char } else { '_' })
        .collect()
}

fn is_replica_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// The file a replica appends to: `<stem>-<replica>.<ext>` beside the
/// configured path. A configured path that exists and is not a regular
/// file (a device such as `/dev/full`, or a pipe) is used as it is.
pub fn active_path(configured: &Path, replica: &str) -> PathBuf {
    if std::fs::metadata(configured).is_ok_and(|m| !m.is_file() && !m.is_dir())
    {
        return configured.to_path_buf();
    }
    let stem = configured
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match configured.extension() {
        Some(ext) => format!("{stem}-{replica}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{replica}"),
    };
    configured.with_file_name(name)
}

/// The name the active file gets when it is rotated at `at`.
pub fn rotated_path(active: &Path, at: SystemTime) -> PathBuf {
    let stem = active
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = stamp(at);
    let name = match active.extension() {
        Some(ext) => format!("{stem}-{stamp}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{stamp}"),
    };
    active.with_file_name(name)
}

/// `at` in UTC as `20261203T181500.123456Z`: sortable as text, and free of
/// the colons that some file systems refuse.
pub fn stamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at)
        .to_string()
        .replace(['-', ':'], "")
}

/// A file name split into the active name it was rotated from and its
/// rotation stamp; `None` as stamp for an active file.
pub fn split_name(name: &str) -> (String, Option<String>) {
    for (at, _) in name.match_indices('-').rev() {
        let rest = &name[at + 1..];
        if rest.len() < STAMP_LEN || !is_stamp(&rest[..STAMP_LEN]) {
            continue;
        }
        let after = &rest[STAMP_LEN..];
        if after.is_empty() || after.starts_with('.') {
            let active = format!("{}{after}", &name[..at]);
            return (active, Some(rest[..STAMP_LEN].to_owned()));
        }
    }
    (name.to_owned(), None)
}

fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == STAMP_LEN
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 => c == b'T',
            15 => c == b'.',
            22 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// One replica's trail: its files, oldest first, the active file last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    /// The active file's name, which names the trail.
    pub name: String,
    /// Its files, oldest first.
    pub files: Vec<PathBuf>,
}

/// The trails under `path`: one trail of one file for a file; for a folder,
/// its regular, non-hidden files grouped by the active name they belong
/// to, sorted by name.
pub fn trails(path: &Path) -> std::io::Result<Vec<Trail>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![Trail {
            name,
            files: vec![path.to_path_buf()],
        }]);
    }

    let mut found: Vec<(String, Option<String>, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        let (active, stamp) = split_name(&name);
        found.push((active, stamp, entry.path()));
    }
    // Stamps sort as text; an active file (no stamp) comes after them all.
    found.sort_by(|a, b| {
        (&a.0, a.1.is_none(), &a.1).cmp(&(&b.0, b.1.is_none(), &b.1))
    });

    let mut trails: Vec<Trail> = Vec::new();
    for (active, _, file) in found {
        match trails.last_mut() {
            Some(trail) if trail.name == active => trail.files.push(file),
            _ => trails.push(Trail {
                name: active,
                files: vec![file],
            }),
        }
    }
    Ok(trails)
}

/// The newest rotated file of the trail whose active file is `active`.
pub fn latest_rotated(active: &Path) -> Option<PathBuf> {
    let folder = active.parent().filter(|p| !p.as_os_str().is_empty());
    let folder = folder.unwrap_or(Path::new("."));
    let name = active.file_name()?.to_string_lossy().into_owned();
    trails(folder)
        .ok()?
        .into_iter()
        .find(|t| t.name == name)?
        .files
        .into_iter()
        .rfind(|f| f.as_path() != active)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn names_carry_replica_and_stamp() {
        let active =
            active_path(Path::new("/var/audit/cancelguard.jsonl"), "pod-a");
        assert_eq!(active, Path::new("/var/audit/cancelguard-pod-a.jsonl"));
        let at = UNIX_EPOCH + Duration::from_micros(1_796_321_700_123_456);
        let rotated = rotated_path(&active, at);
        assert_eq!(
            rotated,
            Path::new(
                "/var/audit/cancelguard-pod-a-20261203T181500.123456Z.jsonl"
            )
        );
        let name = rotated.file_name().expect("name").to_string_lossy();
        assert_eq!(
            split_name(&name),
            (
                "cancelguard-pod-a.jsonl".into(),
                Some("20261203T181500.123456Z".into())
            )
        );
        assert_eq!(
            split_name("cancelguard-pod-a.jsonl"),
            ("cancelguard-pod-a.jsonl".into(), None)
        );
        assert_eq!(active_path(Path::new("trail"), "r"), Path::new("trail-r"));
        assert_eq!(split_name("trail-r-20261203T181500.123456Z").0, "trail-r");
    }

    #[test]
    fn devices_are_used_as_they_are() {
        assert_eq!(
            active_path(Path::new("/dev/full"), "x"),
            Path::new("/dev/full")
        );
    }

    #[test]
    fn replica_names_are_kept_to_safe_characters() {
        assert!(is_valid_replica("pod-a_1.eu"));
        assert!(!is_valid_replica("pod/a"));
        assert!(!is_valid_replica(""));
        assert_eq!(sanitize_replica("host name/../x"), "host_name_.._x");
    }

    #[test]
    fn a_folder_sorts_into_one_trail_per_replica() {
        let dir = tempfile::tempdir().expect("dir");
        for name in [
            "c-b.jsonl",
            "c-a-20261203T181500.000002Z.jsonl",
            "c-a.jsonl",
            "c-a-20261203T181500.000001Z.jsonl",
            ".hidden",
        ] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let trails = trails(dir.path()).expect("readable");
        let names: Vec<Vec<String>> = trails
            .iter()
            .map(|t| {
                t.files
                    .iter()
                    .map(|f| f.file_name().expect("n").to_string_lossy().into())
                    .collect()
            })
            .collect();
        assert_eq!(
            names,
            [
                vec![
                    "c-a-20261203T181500.000001Z.jsonl".to_string(),
                    "c-a-20261203T181500.000002Z.jsonl".into(),
                    "c-a.jsonl".into()
                ],
                vec!["c-b.jsonl".into()]
            ]
        );
        let latest = latest_rotated(&dir.path().join("c-a.jsonl"));
        assert_eq!(
            latest,
            Some(dir.path().join("c-a-20261203T181500.000002Z.jsonl"))
        );
        assert_eq!(latest_rotated(&dir.path().join("c-b.jsonl")), None);
    }
}
