//! The planned destination of an export: the directory or object-store location with
//! references to credentials (never secrets), and an incremental export's window
//! directory.

use rivet_schema::config::{DestinationKind, ExportConfig};
use rivet_schema::layout::window_dir;
use rivet_schema::plan::{PlannedDestination, PlannedStore};

/// The planned destination; an incremental export's window `seq` gets a directory
/// (or key prefix) of its own, `window-NNNNN`, so earlier windows are never touched.
pub fn planned_destination(e: &ExportConfig, window_seq: Option<u32>) -> PlannedDestination {
    let d = &e.destination;
    let suffix = |base: &str| match window_seq {
        Some(seq) => window_dir(base, seq),
        None => base.to_owned(),
    };
    let store = match d.kind {
        DestinationKind::S3 | DestinationKind::Gcs | DestinationKind::Azure => {
            let prefix = d.prefix.as_deref().unwrap_or("").trim_matches('/');
            Some(PlannedStore {
                bucket: d
                    .bucket
                    .clone()
                    .or_else(|| d.container.clone())
                    .unwrap_or_default(),
                prefix: suffix(prefix),
                region: d.region.clone(),
                endpoint: d.endpoint.clone(),
                path_style: d.path_style.unwrap_or(false),
                access_key_env: d.access_key_env.clone(),
                secret_key_env: d.secret_key_env.clone(),
                session_token_env: d.session_token_env.clone(),
                credentials_file: d.credentials_file.clone(),
                account: d.account.clone(),
                account_key_env: d.account_key_env.clone(),
                sas_token_env: d.sas_token_env.clone(),
                bearer_token_env: d.bearer_token_env.clone(),
            })
        }
        DestinationKind::Local | DestinationKind::Stdout => None,
    };
    PlannedDestination {
        kind: d.kind,
        path: match d.kind {
            DestinationKind::Local => suffix(d.path.as_deref().unwrap_or("")),
            _ => String::new(),
        },
        store,
    }
}
