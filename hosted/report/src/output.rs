//! The files a benchmark leaves: `<out>/<benchmark>.json` and `.svg`, and
//! the command recorded in the JSON file as the one that made them.

use std::path::Path;

use serde_json::Value;

/// The command to record: `given` (what `cargo xtask bench` passes), or
/// else this process's own command line.
pub fn recorded_command(given: String) -> String {
    if given.is_empty() {
        std::env::args().collect::<Vec<_>>().join(" ")
    } else {
        given
    }
}

/// Writes `<out>/<benchmark>.json` (pretty-printed) and `<out>/<benchmark>.svg`,
/// creating `out` if needed, and says so on stdout.
pub fn write_results(out: &Path, benchmark: &str, json: &Value, svg: &str) -> Result<(), String> {
    std::fs::create_dir_all(out)
        .map_err(|error| format!("cannot create {}: {error}", out.display()))?;
    let write = |extension: &str, contents: &str| {
        let path = out.join(format!("{benchmark}.{extension}"));
        std::fs::write(&path, contents)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("wrote {}", path.display());
        Ok::<_, String>(())
    };
    write(
        "json",
        &(serde_json::to_string_pretty(json).expect("JSON values serialise") + "\n"),
    )?;
    write("svg", svg)
}
