//! The command line every hosted benchmark binary takes:
//! `<benchmark> [--out DIR] [--cpus A,B,...] [--repetitions N] [--command TEXT]`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug)]
pub struct BenchArgs {
    pub benchmark: String,
    /// Where to write `<benchmark>.json` and `.svg`.
    pub out: PathBuf,
    /// CPUs to pin to, all different; `None`: the benchmark's default.
    pub cpus: Option<Vec<usize>>,
    /// Rounds.
    pub repetitions: usize,
    /// The command to record as having produced the results.
    pub command: String,
}

pub fn parse(
    mut args: impl Iterator<Item = String>,
    default_repetitions: usize,
) -> Result<BenchArgs, String> {
    let mut benchmark = None;
    let mut parsed = BenchArgs {
        benchmark: String::new(),
        out: PathBuf::from("bench/results"),
        cpus: None,
        repetitions: default_repetitions,
        command: String::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            // cargo bench passes this to every benchmark binary.
            "--bench" => {}
            "--out" => parsed.out = PathBuf::from(value("--out")?),
            "--command" => parsed.command = value("--command")?,
            "--repetitions" => {
                let text = value("--repetitions")?;
                parsed.repetitions = text
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(format!("--repetitions {text}: not a count"))?;
            }
            "--cpus" => {
                let text = value("--cpus")?;
                let cpus: Option<Vec<usize>> =
                    text.split(',').map(|cpu| cpu.trim().parse().ok()).collect();
                match cpus {
                    Some(cpus)
                        if !cpus.is_empty()
                            && cpus
                                .iter()
                                .enumerate()
                                .all(|(i, cpu)| !cpus[..i].contains(cpu)) =>
                    {
                        parsed.cpus = Some(cpus)
                    }
                    _ => return Err(format!("--cpus {text}: expected different CPUs, like 0,1")),
                }
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            name if benchmark.is_none() => benchmark = Some(name.to_owned()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    parsed.benchmark = benchmark.ok_or("no benchmark named")?;
    Ok(parsed)
}

/// A benchmark binary's `main`: parses the command line (printing `usage`
/// on a bad one, exit status 2), runs the benchmark, and reports its error
/// (exit status 1).
pub fn run_main(
    usage: &str,
    default_repetitions: usize,
    run: impl FnOnce(BenchArgs) -> Result<(), String>,
) -> ExitCode {
    let args = match parse(std::env::args().skip(1), default_repetitions) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<BenchArgs, String> {
        parse(words.split_whitespace().map(str::to_owned), 7)
    }

    #[test]
    fn flags_and_defaults() {
        let args = parse_words("fig3 --bench --cpus 1,0 --repetitions 3").unwrap();
        assert_eq!(args.benchmark, "fig3");
        assert_eq!(args.cpus, Some(vec![1, 0]));
        assert_eq!(args.repetitions, 3);
        assert_eq!(parse_words("urpc").unwrap().repetitions, 7);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(
            parse_words("x --cpus 1,1")
                .unwrap_err()
                .contains("different CPUs")
        );
        assert!(
            parse_words("x --repetitions 0")
                .unwrap_err()
                .contains("not a count")
        );
        assert!(
            parse_words("x y")
                .unwrap_err()
                .contains("unexpected argument y")
        );
        assert!(parse_words("--out").unwrap_err().contains("needs a value"));
        assert!(parse_words("").unwrap_err().contains("no benchmark"));
    }
}
