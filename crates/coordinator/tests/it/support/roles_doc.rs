//! The tables of docs/roles.md: who may make each call. Shared by the coordinator's
//! authorisation matrix test and the media server's (tests/it/cluster.rs includes this file).

/// The callers, in the tables' column order.
pub const CALLERS: [&str; 5] = ["guest", "agent", "supervisor", "admin", "pending"];

/// The rows of the table of `doc` (docs/roles.md) whose header starts with `first` (e.g.
/// "call", "media server call"): (call, cells in [`CALLERS`] order).
pub fn roles_table(doc: &str, first: &str) -> Vec<(String, Vec<String>)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in doc.lines().map(str::trim) {
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if !in_table {
            if cells[0] == first {
                assert_eq!(cells[1..], CALLERS.map(String::from), "columns of {line}");
                in_table = true;
            }
            continue;
        }
        if cells[0].starts_with("---") {
            continue;
        }
        assert_eq!(cells.len(), 1 + CALLERS.len(), "row {line}");
        rows.push((cells[0].clone(), cells[1..].to_vec()));
    }
    assert!(in_table, "docs/roles.md has no table headed {first:?}");
    rows
}
