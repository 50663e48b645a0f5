//! Two exports must never write into the same place: the second one's finalize would
//! delete the first one's files as stale. Destinations are compared after
//! normalisation — local paths made absolute with `.`, `..` and symlinks resolved (as
//! far as they exist), object-store locations as store, bucket and prefix — and a
//! destination inside another one is a clash too, because readers that list a prefix
//! recursively would mix the two exports.

use std::path::{Component, Path, PathBuf};

use rivet_schema::config::{DestinationKind, ExportConfig};
use rivet_schema::ConfigProblem;

/// Where an export writes, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// Absolute path components.
    Local(Vec<String>),
    /// Store identity (kind, account/endpoint, bucket) and prefix components.
    Object(String, Vec<String>),
}

/// `path` made absolute against `cwd`, with the longest existing ancestor resolved
/// through symlinks and the rest normalised lexically.
fn resolve_local(cwd: &Path, path: &str) -> Vec<String> {
    let full = cwd.join(path);
    let components: Vec<Component<'_>> = full.components().collect();
    // The longest prefix of the path that exists, resolved through symlinks; the rest
    // (not created yet) is normalised lexically.
    let (mut out, rest) = (0..=components.len())
        .rev()
        .find_map(|n| {
            let prefix: PathBuf = components[..n].iter().collect();
            let canonical = if n == 0 {
                PathBuf::from("/")
            } else {
                prefix.canonicalize().ok()?
            };
            let parts: Vec<String> = canonical
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            Some((parts, &components[n..]))
        })
        .unwrap_or_default();
    for c in rest {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    out
}

fn prefix_parts(prefix: &str) -> Vec<String> {
    prefix
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_owned)
        .collect()
}

fn place(cwd: &Path, e: &ExportConfig) -> Option<Place> {
    let d = &e.destination;
    match d.kind {
        DestinationKind::Local => Some(Place::Local(resolve_local(
            cwd,
            d.path.as_deref().unwrap_or(""),
        ))),
        DestinationKind::Stdout => None,
        kind => {
            let store = format!(
                "{}://{}{}/{}",
                rivet_schema::variant_name(&kind),
                d.account
                    .as_deref()
                    .map(|a| format!("{a}@"))
                    .unwrap_or_default(),
                d.endpoint.as_deref().unwrap_or(""),
                d.bucket.as_deref().or(d.container.as_deref()).unwrap_or("")
            );
            Some(Place::Object(
                store,
                prefix_parts(d.prefix.as_deref().unwrap_or("")),
            ))
        }
    }
}

fn show(p: &Place) -> String {
    match p {
        Place::Local(parts) => format!("/{}", parts.join("/")),
        Place::Object(store, parts) => format!("{store}/{}", parts.join("/")),
    }
}

/// Whether `inner` is `outer` or lies below it.
fn within(inner: &[String], outer: &[String]) -> bool {
    inner.len() >= outer.len() && inner[..outer.len()] == *outer
}

/// Every pair of exports whose destinations are the same place or nested, as config
/// problems on the later export (paths resolved against `cwd`, where apply runs).
/// `exports` pairs each export with its index in the config.
pub fn destination_clashes(exports: &[(usize, ExportConfig)], cwd: &Path) -> Vec<ConfigProblem> {
    let places: Vec<Option<Place>> = exports.iter().map(|(_, e)| place(cwd, e)).collect();
    let mut problems = Vec::new();
    for (j, pj) in places.iter().enumerate() {
        let Some(pj) = pj else { continue };
        for (i, pi) in places.iter().enumerate().take(j) {
            let Some(pi) = pi else { continue };
            let relation = match (pi, pj) {
                (Place::Local(a), Place::Local(b)) if a == b => "the same directory as",
                (Place::Object(sa, a), Place::Object(sb, b)) if sa == sb && a == b => {
                    "the same location as"
                }
                (Place::Local(a), Place::Local(b)) if within(b, a) => "a directory inside that of",
                (Place::Local(a), Place::Local(b)) if within(a, b) => {
                    "a directory that contains that of"
                }
                (Place::Object(sa, a), Place::Object(sb, b)) if sa == sb && within(b, a) => {
                    "a prefix inside that of"
                }
                (Place::Object(sa, a), Place::Object(sb, b)) if sa == sb && within(a, b) => {
                    "a prefix that contains that of"
                }
                _ => continue,
            };
            let ((ii, ei), (jj, ej)) = (&exports[i], &exports[j]);
            let key = match ej.destination.kind {
                DestinationKind::Local => "path",
                _ => "prefix",
            };
            problems.push(ConfigProblem {
                path: format!("exports[{jj}].destination.{key}"),
                message: format!(
                    "export `{}` writes to {relation} export `{}` (exports[{ii}]): {} and {}; each export needs a place of its own, or one export's finalize deletes the other's files",
                    ej.name,
                    ei.name,
                    show(pj),
                    show(pi)
                ),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(paths: &[&str]) -> Vec<(usize, ExportConfig)> {
        let exports: String = paths
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  - name: e{i}\n    table: t\n    destination: {p}\n"))
            .collect();
        rivet_schema::load::parse_config(
            "rivet.yaml",
            &format!("source:\n  type: postgres\n  url_env: U\nexports:\n{exports}"),
        )
        .unwrap()
        .exports
        .into_iter()
        .enumerate()
        .collect()
    }

    #[test]
    fn spellings_of_one_directory_and_nested_directories_clash() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        std::fs::create_dir_all(cwd.join("real/t")).unwrap();
        std::os::unix::fs::symlink(cwd.join("real"), cwd.join("link")).unwrap();
        let abs = cwd.join("real/t").display().to_string();
        for pair in [
            [
                "{ type: local, path: ./real/t }",
                &format!("{{ type: local, path: '{abs}' }}"),
            ],
            [
                "{ type: local, path: real/t }",
                "{ type: local, path: link/t/ }",
            ],
            [
                "{ type: local, path: real/t }",
                "{ type: local, path: real/x/../t }",
            ],
            [
                "{ type: local, path: new/a }",
                "{ type: local, path: new/./a }",
            ],
            [
                "{ type: local, path: real }",
                "{ type: local, path: link/t/deeper }",
            ],
            [
                "{ type: s3, bucket: b, prefix: x/y }",
                "{ type: s3, bucket: b, prefix: /x/y/ }",
            ],
            [
                "{ type: s3, bucket: b, prefix: x }",
                "{ type: s3, bucket: b, prefix: x/y }",
            ],
        ] {
            let c = config(&[pair[0], pair[1]]);
            let problems = destination_clashes(&c, cwd);
            assert_eq!(problems.len(), 1, "{pair:?} should clash");
            assert!(problems[0].path.starts_with("exports[1].destination."));
        }
        for pair in [
            ["{ type: local, path: a }", "{ type: local, path: ab }"],
            [
                "{ type: s3, bucket: b, prefix: x }",
                "{ type: s3, bucket: c, prefix: x }",
            ],
            [
                "{ type: s3, bucket: b, prefix: x }",
                "{ type: gcs, bucket: b, prefix: x }",
            ],
            [
                "{ type: s3, bucket: b, prefix: x }",
                "{ type: s3, bucket: b, prefix: xy }",
            ],
        ] {
            let c = config(&[pair[0], pair[1]]);
            assert!(
                destination_clashes(&c, cwd).is_empty(),
                "{pair:?} should not clash"
            );
        }
    }
}
