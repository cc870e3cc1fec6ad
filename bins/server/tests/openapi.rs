//! `openapi.yaml` at the repository root must be what the code generates.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn committed_openapi_yaml_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi.yaml");
    let generated = nosyntask_server::openapi::yaml().unwrap();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let diff = line_diff(&committed, &generated);
    panic!(
        "openapi.yaml is stale. Regenerate it with:\n\n    \
         cargo run -p nosyntask-server -- openapi --out openapi.yaml\n\n\
         --- committed\n+++ generated\n{diff}"
    );
}

/// A small line diff (longest common subsequence), enough to show what changed.
fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("{:>5} + {}\n", j + 1, b[j]));
            j += 1;
        } else {
            out.push_str(&format!("{:>5} - {}\n", i + 1, a[i]));
            i += 1;
        }
    }
    out
}
