//! The files a benchmark leaves: `<out>/<benchmark>.json` and `.svg`, and
//! what the JSON file records of where they came from: the command that
//! made them and the commit it ran at.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

/// The command to record: `given` (what `cargo xtask bench` passes), or
/// else this process's own command line.
pub fn recorded_command(given: String) -> String {
    if given.is_empty() {
        std::env::args().collect::<Vec<_>>().join(" ")
    } else {
        given
    }
}

/// The commit of the working tree the benchmark runs in (`git rev-parse
/// HEAD`), and whether tracked files other than results differ from it: a result measured on
/// uncommitted code says so rather than claiming the commit.
fn source() -> Result<Value, String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let output = Command::new("git")
            .args(args)
            .output()
            .map_err(|error| format!("cannot run git {}: {error}", args.join(" ")))?;
        if !output.status.success() {
            return Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    // Results already written (this run's or another's) change nothing
    // that is measured, so they do not count as changes to the commit.
    let changed = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ":/",
        ":(top,exclude)bench/results",
    ])?;
    Ok(json!({
        "commit": commit,
        "uncommitted_changes": changed.lines().collect::<Vec<_>>(),
    }))
}

/// Writes `<out>/<benchmark>.json` (pretty-printed, with the commit it ran
/// at added as `source`) and `<out>/<benchmark>.svg`, creating `out` if
/// needed, and says so on stdout. Fails, writing nothing, if the commit
/// cannot be read: a result that cannot say what it measured is not kept.
pub fn write_results(out: &Path, benchmark: &str, json: &Value, svg: &str) -> Result<(), String> {
    let mut json = json.clone();
    let Value::Object(fields) = &mut json else {
        return Err(format!("the {benchmark} results are not a JSON object"));
    };
    fields.insert("source".to_owned(), source()?);
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
        &(serde_json::to_string_pretty(&json).expect("JSON values serialise") + "\n"),
    )?;
    write("svg", svg)
}
