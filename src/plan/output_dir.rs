//! `-D/--output-dir DIR`: the plan (`plan.txt`, `plan.json`), every manifest applied
//! (`manifests/`) and a log (`asm.log`) of one run. Directories asm creates are 0700, files
//! 0600; an existing directory is reused (its files are overwritten, the log is appended to).
//! Nothing secret is written: plans carry no payload secrets; a Secret's data and any field
//! named like a credential (`token`, `password`, `client-key-data`, …) are replaced by a note
//! before a manifest reaches the disk; the log is what stderr shows. Directories are created
//! 0700 from the start (never world-readable for a moment) and files are opened without
//! following symbolic links, so a planted link cannot redirect a write.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io_error(root, "create the directory", &e))?;
    Ok(true)
}

/// Opens `path` for writing with mode 0600 (also when it existed with another mode).
fn private_file(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
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
    pub fn write_plan(&self, text: &str, json: &impl serde::Serialize) -> Result<(), Error> {
        self.write(PLAN_TEXT, text)?;
        self.write(PLAN_JSON, &super::document::pretty(json))?;
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
        let yaml = serde_yaml::to_string(&without_secrets(object))
            .map_err(|e| Error::apply("ASM-E999", format!("manifest as YAML: {e}")))?;
        let p = dir.join(file_name(kind, ns, name));
        let mut f = private_file(&p, false).map_err(|e| io_error(&self.path, "write", &e))?;
        f.write_all(yaml.as_bytes())
            .map_err(|e| io_error(&self.path, "write", &e))?;
        Ok(p)
    }
}

/// What replaces a secret value in files asm writes.
pub const REDACTED_NOTE: &str = "(not written: asm never stores secret values on disk)";

/// Field names whose values are credentials wherever they appear.
const CREDENTIAL_FIELDS: &[&str] = &[
    "token",
    "password",
    "client-key-data",
    "client-certificate-data",
    "privateKey",
    "private_key",
];

/// `object` with a Secret's `data`/`stringData` values and every credential-named field
/// replaced by [`REDACTED_NOTE`].
pub fn without_secrets(object: &Value) -> Value {
    fn scrub(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if CREDENTIAL_FIELDS.contains(&k.as_str()) && !child.is_object() {
                        *child = Value::String(REDACTED_NOTE.into());
                    } else {
                        scrub(child);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let mut out = object.clone();
    if out["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(m) = out.get_mut(field).and_then(Value::as_object_mut) {
                for v in m.values_mut() {
                    *v = Value::String(REDACTED_NOTE.into());
                }
            }
        }
    }
    scrub(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_credential_fields_never_reach_the_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let o = OutputDir::prepare(&tmp.path().join("out")).unwrap();
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "istio-remote-secret-c2", "namespace": "istio-system"},
            "stringData": {"c2": "users:\n- user:\n    token: eyJhbGciOiJSUzI1NiJ9.SECRET"},
            "data": {"token": "ZXlKU0VDUkVU"}});
        let p = o.write_manifest("c1", &secret).unwrap();
        let written = fs::read_to_string(p).unwrap();
        assert!(
            !written.contains("SECRET") && !written.contains("ZXlKU0VDUkVU"),
            "{written}"
        );
        assert!(written.contains(REDACTED_NOTE));
        let cm = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "x"},
            "data": {"mode": "managed", "nested": {"token": "abc"}}});
        let scrubbed = without_secrets(&cm);
        assert_eq!(scrubbed["data"]["mode"], "managed");
        assert_eq!(scrubbed["data"]["nested"]["token"], REDACTED_NOTE);
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("out");
        let o = OutputDir::prepare(&d).unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.join(PLAN_TEXT)).unwrap();
        assert!(o.write(PLAN_TEXT, "overwritten").is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    }

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
