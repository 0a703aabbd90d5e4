//! Exec scripts: `cmd; cmd; ...` given on the kernel command line as
//! `atoll.exec=...`, run in order instead of reading the serial port.

use alloc::string::String;

use crate::command::ParseError;

const EXEC_KEY: &[u8] = b"atoll.exec=";

/// The commands of a script: split on `;`, trimmed, empty pieces skipped.
/// A `;` between double quotes belongs to its command (`skb query "a(X); b"`
/// is one command); after a quote that is never closed, the rest of the
/// script is one command, for the parser to refuse.
pub fn split_script(script: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(script);
    core::iter::from_fn(move || {
        let text = rest?;
        let mut quoted = false;
        // Both are ASCII, so no byte of a multi-byte character matches.
        let end = text.bytes().position(|byte| {
            quoted ^= byte == b'"';
            byte == b';' && !quoted
        });
        Some(match end {
            Some(end) => {
                rest = Some(&text[end + 1..]);
                &text[..end]
            }
            None => {
                rest = None;
                text
            }
        })
    })
    .map(str::trim_ascii)
    .filter(|command| !command.is_empty())
}

/// Finds `atoll.exec=` in the kernel command line and returns the rest of the
/// line as the script, or `Ok(None)` when there is none.
///
/// Boot loaders pass the value on in different shapes (GRUB may quote the
/// whole word, quote the value, or escape its spaces), so one level of quotes
/// around it is removed, whether the opening quote sits before `atoll.exec=`
/// or after the `=`, and then backslash escapes are undone (`\x` becomes `x`).
/// The command line ends at the first NUL, as multiboot hands over a C string.
pub fn exec_script_from_cmdline(cmdline: &[u8]) -> Result<Option<String>, ParseError> {
    let end = cmdline
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(cmdline.len());
    let cmdline = &cmdline[..end];
    let Some(key_start) = find_word(cmdline, EXEC_KEY) else {
        return Ok(None);
    };
    let value = core::str::from_utf8(&cmdline[key_start + EXEC_KEY.len()..])
        .map_err(|_| ParseError::ExecScriptNotUtf8)?
        .trim_ascii_end();
    let quote_before_key = key_start
        .checked_sub(1)
        .map(|index| char::from(cmdline[index]))
        .filter(|&c| c == '\'' || c == '"');
    let unquoted = match quote_before_key {
        Some(quote) => value.strip_suffix(quote).unwrap_or(value),
        None => ['\'', '"']
            .into_iter()
            .find_map(|quote| value.strip_prefix(quote)?.strip_suffix(quote))
            .unwrap_or(value),
    };
    Ok(Some(undo_backslash_escapes(unquoted)))
}

/// Where `key` starts a word of the command line: at its start, or after a
/// blank or a quote.
fn find_word(cmdline: &[u8], key: &[u8]) -> Option<usize> {
    (0..cmdline.len()).find(|&index| {
        cmdline[index..].starts_with(key)
            && (index == 0 || matches!(cmdline[index - 1], b' ' | b'\t' | b'\'' | b'"'))
    })
}

/// The value of `key` (given with its `=`, as in `atoll.cores=`) among the
/// kernel command line's words before `atoll.exec=`, which takes the rest of
/// the line: the bytes up to the next blank. `None` when absent or not UTF-8.
pub fn cmdline_option<'c>(cmdline: &'c [u8], key: &str) -> Option<&'c str> {
    let options = &cmdline[..find_word(cmdline, EXEC_KEY).unwrap_or(cmdline.len())];
    let start = find_word(options, key.as_bytes())? + key.len();
    let value = &options[start..];
    let end = value
        .iter()
        .position(|byte| byte.is_ascii_whitespace() || *byte == 0)
        .unwrap_or(value.len());
    core::str::from_utf8(&value[..end]).ok()
}

/// `\x` becomes `x`; a backslash at the very end has nothing to escape and stays.
fn undo_backslash_escapes(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        result.push(if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn script_of(cmdline: &str) -> Option<String> {
        exec_script_from_cmdline(cmdline.as_bytes()).expect("the command line is UTF-8")
    }

    #[test]
    fn script_splits_on_semicolons_and_skips_empty_pieces() {
        let commands: Vec<_> = split_script(" cores;ipi 1 ;; \t;mem;").collect();
        assert_eq!(commands, ["cores", "ipi 1", "mem"]);
        assert_eq!(split_script(" ; ;").count(), 0);
    }

    #[test]
    fn semicolons_in_double_quotes_stay_in_their_command() {
        let commands: Vec<_> =
            split_script("skb query \"a(X); b(X)\"; cores;skb query \";\";mem").collect();
        assert_eq!(
            commands,
            [
                "skb query \"a(X); b(X)\"",
                "cores",
                "skb query \";\"",
                "mem"
            ]
        );
        // Quotes open and close anywhere in a command, not only around it.
        let commands: Vec<_> = split_script("skb query p(\"a;b\", X);mem").collect();
        assert_eq!(commands, ["skb query p(\"a;b\", X)", "mem"]);
        // Single quotes do not quote.
        let commands: Vec<_> = split_script("skb facts ';' ").collect();
        assert_eq!(commands, ["skb facts '", "'"]);
    }

    #[test]
    fn an_unclosed_quote_takes_the_rest_of_the_script() {
        let commands: Vec<_> = split_script("cores; skb query \"a(X); halt ;").collect();
        assert_eq!(commands, ["cores", "skb query \"a(X); halt ;"]);
        assert_eq!(
            crate::parse(commands[1]),
            Err(ParseError::UnterminatedQuote {
                command: "skb query",
                usage: "skb query \"<rule body>\"",
            })
        );
    }

    proptest! {
        /// Joined with `;`, commands without `;` or `"` come back as they were,
        /// and so do quoted ones, whatever `;` they hold.
        #[test]
        fn split_undoes_a_join(
            commands in proptest::collection::vec("[a-z ]*[a-z][a-z ]*|\"[a-z ;]*\"", 0..6),
        ) {
            let script = commands.join(";");
            let split: Vec<_> = split_script(&script).collect();
            let expected: Vec<_> = commands.iter().map(|command| command.trim_ascii()).collect();
            prop_assert_eq!(split, expected);
        }

        #[test]
        fn split_never_panics_and_gives_trimmed_commands(script in "(?s).*") {
            let kept: usize = split_script(&script).map(str::len).sum();
            prop_assert!(kept <= script.len());
            for command in split_script(&script) {
                prop_assert!(!command.is_empty());
                prop_assert!(command.trim_ascii() == command);
            }
        }
    }

    #[test]
    fn every_quoting_form_gives_the_same_script() {
        for cmdline in [
            "atoll.exec=cores; ipi 1",
            "'atoll.exec=cores; ipi 1'",
            "\"atoll.exec=cores; ipi 1\"",
            "atoll.exec='cores; ipi 1'",
            "atoll.exec=\"cores; ipi 1\"",
            "atoll.exec=cores;\\ ipi\\ 1",
            "console=ttyS0 quiet atoll.exec=cores; ipi 1",
            "console=ttyS0 'atoll.exec=cores; ipi 1'",
            "console=ttyS0 atoll.exec='cores; ipi 1'",
            "console=ttyS0\tatoll.exec=cores;\\ ipi\\ 1\n",
            "atoll.exec=cores; ipi 1\0garbage after the C string",
        ] {
            assert_eq!(
                script_of(cmdline).as_deref(),
                Some("cores; ipi 1"),
                "{cmdline:?}"
            );
        }
    }

    #[test]
    fn only_one_level_of_quotes_is_removed() {
        assert_eq!(script_of("atoll.exec=\"'mem'\"").as_deref(), Some("'mem'"));
        assert_eq!(script_of("atoll.exec='mem").as_deref(), Some("'mem"));
    }

    #[test]
    fn escaped_quotes_and_backslashes_are_undone() {
        assert_eq!(
            script_of(r#"atoll.exec="a\"b\\c""#).as_deref(),
            Some(r#"a"b\c"#)
        );
        assert_eq!(script_of(r"atoll.exec=mem\").as_deref(), Some(r"mem\"));
    }

    #[test]
    fn options_are_read_only_before_the_exec_script() {
        let cmdline = b"quiet atoll.test.withhold_startup=2 atoll.exec=cores; atoll.x=1";
        assert_eq!(
            cmdline_option(cmdline, "atoll.test.withhold_startup="),
            Some("2")
        );
        assert_eq!(cmdline_option(cmdline, "atoll.x="), None);
        assert_eq!(cmdline_option(b"xatoll.a=1", "atoll.a="), None);
        assert_eq!(cmdline_option(b"atoll.a=1\0rest", "atoll.a="), Some("1"));
    }

    #[test]
    fn absent_key_is_no_script() {
        assert_eq!(script_of(""), None);
        assert_eq!(script_of("console=ttyS0 quiet"), None);
        assert_eq!(script_of("xatoll.exec=halt"), None);
        assert_eq!(script_of("atoll.exec"), None);
    }

    #[test]
    fn empty_value_is_an_empty_script() {
        assert_eq!(script_of("quiet atoll.exec="), Some(String::new()));
    }

    #[test]
    fn non_utf8_script_is_an_error() {
        assert_eq!(
            exec_script_from_cmdline(b"atoll.exec=cores\xff"),
            Err(ParseError::ExecScriptNotUtf8)
        );
        assert_eq!(
            exec_script_from_cmdline(b"\xff atoll.exec=mem"),
            Ok(Some("mem".into()))
        );
    }
}
