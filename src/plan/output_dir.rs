//! `-D/--output-dir DIR`: the plan (`plan.txt`, `plan.json`), every manifest applied
//! (`manifests/`) and a log (`asm.log`) of one run. Directories asm creates are 0700, files
//! 0600; an existing directory is reused (its files are overwritten, the log is appended to).
//! Nothing secret is written: plans carry no payload secrets, manifests are the namespace,
//! ConfigMap and ControlPlaneRevision objects, the log is what stderr shows.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::Error;

/// Name of the log file.
pub const LOG: &str = "asm.log";
/// Name of the text plan.
pub const PLAN_TEXT: &str = "plan.txt";
/// Name of the JSON plan (`asm.plan/v1`).
pub const PLAN_JSON: &str = "plan.json";
/// Directory of the manifests applied.
pub const MANIFESTS: &str = "manifests";

/// An output directory, created (or reused) before any request.
#[derive(Debug, Clone)]
pub struct OutputDir {
    pub path: PathBuf,
    /// Set when an existing directory is readable by others (asm's files stay 0600).
    pub open_to_others: bool,
}

fn io_error(flag_path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::usage(
        "ASM-E104",
        format!(
            "-D/--output-dir {:?}: cannot {what}: {e}",
            flag_path.display()
        ),
    )
}

fn create_private_dir(path: &Path, root: &Path) -> Result<bool, Error> {
    if path.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(path).map_err(|e| io_error(root, "create the directory", &e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_error(root, "make the directory private", &e))?;
    Ok(true)
}

/// Opens `path` for writing with mode 0600 (also when it existed with another mode).
fn private_file(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).mode(0o600);
    if append {
        o.append(true);
    } else {
        o.truncate(true);
    }
    let f = o.open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// A file name from an object's kind and name: `Kind-name.yaml`, safe characters only.
fn file_name(kind: &str, namespace: Option<&str>, name: &str) -> String {
    let raw = match namespace {
        Some(ns) => format!("{kind}-{ns}-{name}"),
        None => format!("{kind}-{name}"),
    };
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.yaml")
}

impl OutputDir {
    /// Creates `path` (0700) if missing; reuses it otherwise. Local only: runs before any
    /// request, and a failure is a usage error naming the flag.
    pub fn prepare(path: &Path) -> Result<OutputDir, Error> {
        if path.exists() && !path.is_dir() {
            return Err(Error::usage(
                "ASM-E104",
                format!(
                    "-D/--output-dir {:?} exists and is not a directory",
                    path.display()
                ),
            ));
        }
        let created = create_private_dir(path, path)?;
        let open_to_others = !created
            && fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o077 != 0)
                .unwrap_or(false);
        // Check now that files can be written, so a read-only directory fails before any
        // request rather than after the changes.
        private_file(&path.join(LOG), true).map_err(|e| io_error(path, "write in it", &e))?;
        Ok(OutputDir {
            path: path.to_path_buf(),
            open_to_others,
        })
    }

    /// The log, opened for appending (0600).
    pub fn log(&self) -> Result<File, Error> {
        private_file(&self.path.join(LOG), true)
            .map_err(|e| io_error(&self.path, "open the log", &e))
    }

    /// Writes `name` (0600) with `contents`.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf, Error> {
        let p = self.path.join(name);
        let mut f = private_file(&p, false).map_err(|e| io_error(&self.path, "write", &e))?;
        f.write_all(contents.as_bytes())
            .map_err(|e| io_error(&self.path, "write", &e))?;
        Ok(p)
    }

    /// Writes `plan.txt` and `plan.json`.
    pub fn write_plan(&self, text: &str, json: &Value) -> Result<(), Error> {
        self.write(PLAN_TEXT, text)?;
        self.write(PLAN_JSON, &format!("{json:#}\n"))?;
        Ok(())
    }

    /// Writes one manifest as YAML to `manifests/CLUSTER/Kind-[ns-]name.yaml`.
    pub fn write_manifest(&self, cluster: &str, object: &Value) -> Result<PathBuf, Error> {
        let dir = self.path.join(MANIFESTS).join(
            cluster
                .chars()
                .map(|c| if c == '/' { '_' } else { c })
                .collect::<String>(),
        );
        create_private_dir(&self.path.join(MANIFESTS), &self.path)?;
        create_private_dir(&dir, &self.path)?;
        let kind = object["kind"].as_str().unwrap_or("Object");
        let name = object["metadata"]["name"].as_str().unwrap_or("unnamed");
        let ns = object["metadata"]["namespace"].as_str();
        let yaml = serde_yaml::to_string(object)
            .map_err(|e| Error::apply("ASM-E999", format!("manifest as YAML: {e}")))?;
        let p = dir.join(file_name(kind, ns, name));
        let mut f = private_file(&p, false).map_err(|e| io_error(&self.path, "write", &e))?;
        f.write_all(yaml.as_bytes())
            .map_err(|e| io_error(&self.path, "write", &e))?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dir_and_files_and_reuses_it() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("out/nested");
        let o = OutputDir::prepare(&d).unwrap();
        assert!(!o.open_to_others);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o700);
        o.write_plan("Plan: 0\n", &serde_json::json!({"schema": "asm.plan/v1"}))
            .unwrap();
        let m = o
            .write_manifest(
                "asm-fresh/us-central1-c/cluster-1",
                &serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "asm-options", "namespace": "istio-system"}}),
            )
            .unwrap();
        assert!(m.ends_with(
            "asm-fresh_us-central1-c_cluster-1/ConfigMap-istio-system-asm-options.yaml"
        ));
        for f in [d.join(PLAN_TEXT), d.join(PLAN_JSON), d.join(LOG), m] {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        assert_eq!(mode(&d.join(MANIFESTS)), 0o700);
        // Re-use.
        let again = OutputDir::prepare(&d).unwrap();
        again.write(PLAN_TEXT, "x").unwrap();
        assert_eq!(fs::read_to_string(d.join(PLAN_TEXT)).unwrap(), "x");
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let e = OutputDir::prepare(tmp.path()).unwrap_err();
        assert_eq!(e.exit_code, 2);
        assert!(e.message.contains("--output-dir"));
    }
}
