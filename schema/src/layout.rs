//! How an export's files are named, in one place. The planner names each chunk's file
//! when it seals a plan, and the executor derives part files, temporary files and the
//! stale-file sweep from the same rules, so a name the planner gives is always a name
//! the executor recognizes as its own. Pure functions: no I/O here.

use crate::config::{Compression, Format};

/// Prefix of in-progress files: never a final name, removed on the next apply.
pub const TEMP_PREFIX: &str = ".rivet-tmp-";
/// The per-export manifest, written after every chunk is committed.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Written last: the export is complete and its manifest is final.
pub const SUCCESS_FILE: &str = "_SUCCESS";

/// File extension for a format and codec (`parquet`, `csv`, `csv.gz`, `csv.zst`).
pub fn file_extension(format: Format, compression: Compression) -> &'static str {
    match (format, compression) {
        (Format::Parquet, _) => "parquet",
        (Format::Csv, Compression::Gzip) => "csv.gz",
        (Format::Csv, Compression::Zstd) => "csv.zst",
        (Format::Csv, _) => "csv",
    }
}

/// The stable id of an export's `seq`-th chunk: `<export>/<seq>`.
pub fn chunk_id(export: &str, seq: u32) -> String {
    format!("{export}/{seq:05}")
}

/// The file of an export's `seq`-th chunk: `part-00003.parquet`.
pub fn chunk_file_name(seq: u32, format: Format, compression: Compression) -> String {
    format!("part-{seq:05}.{}", file_extension(format, compression))
}

/// The final file name of a chunk's `k`-th part (from 1): the chunk's own name for the
/// first, `part-00003-002.parquet` for the second, and so on (`max_file_size`).
pub fn part_file_name(file: &str, k: usize) -> String {
    if k <= 1 {
        return file.to_owned();
    }
    match file.find('.') {
        Some(dot) => format!("{}-{k:03}{}", &file[..dot], &file[dot..]),
        None => format!("{file}-{k:03}"),
    }
}

/// Whether `name` is one Rivet gives chunk files (`part-00003.parquet`,
/// `part-00003-002.csv.gz`): the only names the stale-file sweep may delete.
pub fn is_part_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("part-") else {
        return false;
    };
    let (stem, ext) = rest.split_at(rest.find('.').unwrap_or(rest.len()));
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let stem_ok = match stem.split_once('-') {
        None => digits(stem, 5),
        Some((chunk, part)) => digits(chunk, 5) && digits(part, 3),
    };
    stem_ok && [".parquet", ".csv", ".csv.gz", ".csv.zst"].contains(&ext)
}

/// The directory (or key prefix) of an incremental export's `seq`-th window under
/// `base`: `window-00004`, so earlier windows are never touched.
pub fn window_dir(base: &str, seq: u32) -> String {
    if base.is_empty() {
        format!("window-{seq:05}")
    } else {
        format!("{}/window-{seq:05}", base.trim_end_matches('/'))
    }
}

/// The temporary name a file is written under before it is renamed to `name`.
pub fn temp_file_name(name: &str) -> String {
    format!("{TEMP_PREFIX}{name}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_planner_gives_is_recognized_as_a_part_file() {
        for (format, compression) in [
            (Format::Parquet, Compression::Zstd),
            (Format::Csv, Compression::None),
            (Format::Csv, Compression::Gzip),
            (Format::Csv, Compression::Zstd),
        ] {
            let file = chunk_file_name(3, format, compression);
            assert!(is_part_file(&file), "{file}");
            assert!(is_part_file(&part_file_name(&file, 2)), "{file}");
            assert!(!is_part_file(&temp_file_name(&file)), "{file}");
        }
        assert_eq!(
            part_file_name("part-00003.csv.gz", 2),
            "part-00003-002.csv.gz"
        );
        assert!(!is_part_file("manifest.json"));
        assert!(!is_part_file("part-3.parquet"));
        assert_eq!(window_dir("out/t/", 4), "out/t/window-00004");
        assert_eq!(window_dir("", 1), "window-00001");
    }
}
