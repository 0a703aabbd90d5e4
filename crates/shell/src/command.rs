//! The shell's commands: one table of specs, from which both the parser and
//! the `help` text are derived, so a new command is one new row.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// A program to start: where, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: String,
    /// `--cores LIST`; without it, the shell's core.
    pub cores: Option<Vec<u32>>,
    /// The rest of the line, trimmed (may be empty).
    pub args: String,
}

/// A parsed shell command, ready for the kernel to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Cores,
    Mem,
    Ipi {
        core: u32,
    },
    Fault {
        core: u32,
    },
    /// Stop that core silently, with interrupts off.
    Hang {
        core: u32,
    },
    /// Core `core` leaves the view and stops.
    CoreOff {
        core: u32,
    },
    /// Core `core`, stopped, starts again as a new kernel and rejoins.
    CoreOn {
        core: u32,
    },
    /// `core off`, then `core on`, `times` times.
    CoreCycle {
        core: u32,
        times: u32,
    },
    /// Core `core` writes where it must not.
    Scribble {
        core: u32,
        victim: Victim,
    },
    /// This core's view of the membership, and its detector.
    View,
    /// The programs in the boot image, each checked.
    Programs,
    /// Spawns a process and waits for its end.
    Run(Launch),
    /// Spawns a process and goes on; its end is reported on the console.
    Spawn(Launch),
    /// Every core's processes.
    Ps,
    /// Kills a process.
    Kill {
        pid: u32,
    },
    Halt,
    UrpcPing {
        from: u32,
        to: u32,
    },
    UrpcBench,
    VmMap {
        core: u32,
        page: u32,
    },
    VmUnmap {
        core: u32,
        page: u32,
    },
    VmShow,
    VmHash,
    VmSpan {
        first: u32,
        last: u32,
    },
    VmStorm {
        operations: u32,
        /// On pages of each core's own, so that every proposal commits.
        own: bool,
    },
    /// A storm that runs while the shell goes on, until `vm storm wait`.
    VmStormStart {
        operations: u32,
    },
    VmStormWait,
    BenchShootdown,
    BenchFig3,
    /// Tracing's cost: the same work with tracing off and on.
    BenchTrace,
    /// What heartbeats cost: the same work with them off, at the default,
    /// and ten times as often.
    BenchHeartbeats,
    /// What running a program and a system call cost.
    BenchUser,
    /// Every member's detector suspects after `ms` of silence, heartbeats
    /// at a tenth of it.
    ViewDetector {
        ms: u32,
    },
    /// Core `core` answers, then stops polling for `ms` milliseconds.
    Stall {
        core: u32,
        ms: u32,
    },
    /// The shell waits `ms` milliseconds, its core running on meanwhile.
    Sleep {
        ms: u32,
    },
    TraceOn,
    TraceOff,
    /// Every running core prints the events it recorded.
    TraceDump,
    /// The facts the knowledge base holds: all of them, or one predicate's.
    SkbFacts {
        predicate: Option<String>,
    },
    /// A rule body to evaluate against the knowledge base, as typed (quotes removed).
    SkbQuery {
        body: String,
    },
    /// The multicast tree rooted at a core, as the knowledge base derives it.
    SkbTree {
        root: u32,
    },
}

/// Where `scribble` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Victim {
    /// The start of that core's memory.
    Core(u32),
    /// The kernel's statics, which every core maps read-only.
    Statics,
}

struct CommandSpec {
    /// The command's name (one word, or a word and a subcommand), then its
    /// arguments: `<argument>`, `[<optional argument>]`, or `"<text>"` for
    /// the rest of the line. The name is read from here, so it is written once.
    usage: &'static str,
    /// One line for `help`.
    summary: &'static str,
    /// Reads the arguments after the name. [`parse`] rejects any left unread.
    parse_arguments: fn(&mut Arguments<'_>) -> Result<Command, ParseError>,
}

impl CommandSpec {
    /// The usage up to its first argument: before ` <`, ` [` or ` "`.
    fn name(&self) -> &'static str {
        let end = [" <", " [", " \""]
            .into_iter()
            .filter_map(|start| self.usage.find(start))
            .min()
            .unwrap_or(self.usage.len());
        &self.usage[..end]
    }

    /// The first word of the name: the command a subcommand belongs to.
    fn command_word(&self) -> &'static str {
        self.name()
            .split_once(' ')
            .map_or(self.name(), |(word, _)| word)
    }

    fn takes_arguments(&self) -> bool {
        self.usage.contains('<')
    }

    /// Whether `line` starts with this spec's name; if so, consumes it.
    fn take_name(&self, line: &mut &str) -> bool {
        let mut after = *line;
        if self
            .name()
            .split(' ')
            .all(|part| next_word(&mut after) == Some(part))
        {
            *line = after;
            true
        } else {
            false
        }
    }
}

/// The next word of `line`, split on ASCII whitespace as
/// `str::split_ascii_whitespace` does; `line` keeps what follows it.
fn next_word<'a>(line: &mut &'a str) -> Option<&'a str> {
    let rest = line.trim_ascii_start();
    let end = rest
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let (word, after) = rest.split_at(end);
    *line = after;
    (!word.is_empty()).then_some(word)
}

const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        usage: "help",
        summary: "list commands",
        parse_arguments: |_| Ok(Command::Help),
    },
    CommandSpec {
        usage: "cores",
        summary: "one line per core: id, APIC id, state, timer ticks, free frames",
        parse_arguments: |_| Ok(Command::Cores),
    },
    CommandSpec {
        usage: "mem",
        summary: "the memory map and the per-core frame pools",
        parse_arguments: |_| Ok(Command::Mem),
    },
    CommandSpec {
        usage: "ipi <core>",
        summary: "IPI round trip to a core, in cycles",
        parse_arguments: |arguments| {
            Ok(Command::Ipi {
                core: arguments.number("core number")?,
            })
        },
    },
    CommandSpec {
        usage: "fault <core>",
        summary: "an NMI makes that core take a page fault wherever it is (shows containment)",
        parse_arguments: |arguments| {
            Ok(Command::Fault {
                core: arguments.number("core number")?,
            })
        },
    },
    CommandSpec {
        usage: "hang <core>",
        summary: "that core stops answering with interrupts off; only the failure detector finds it",
        parse_arguments: |arguments| {
            Ok(Command::Hang {
                core: arguments.number("core number")?,
            })
        },
    },
    CommandSpec {
        usage: "core off <core>",
        summary: "that core leaves the view by agreement, its messages drained, and halts with interrupts off",
        parse_arguments: |arguments| {
            Ok(Command::CoreOff {
                core: arguments.number("core number")?,
            })
        },
    },
    CommandSpec {
        usage: "programs",
        summary: "the programs in the boot image, each with its size, entry point and segments, or what is wrong with it",
        parse_arguments: |_| Ok(Command::Programs),
    },
    CommandSpec {
        usage: "run <program> [--cores <list>] [<args>]",
        summary: "spawns that program of the boot image (on the shell's core, or on the listed one) with the arguments, waits for its end and shows it",
        parse_arguments: |arguments| Ok(Command::Run(arguments.launch()?)),
    },
    CommandSpec {
        usage: "spawn <program> [--cores <list>] [<args>]",
        summary: "spawns that program (on the shell's core, or on the listed one) and goes on; its end is reported on the console",
        parse_arguments: |arguments| Ok(Command::Spawn(arguments.launch()?)),
    },
    CommandSpec {
        usage: "ps",
        summary: "every core's processes: pid, parent, program, core, turns on the core and state",
        parse_arguments: |_| Ok(Command::Ps),
    },
    CommandSpec {
        usage: "kill <pid>",
        summary: "kills that process, on whichever core runs it, and frees what it held",
        parse_arguments: |arguments| {
            Ok(Command::Kill {
                pid: arguments.number("process id")?,
            })
        },
    },
    CommandSpec {
        usage: "core on <core>",
        summary: "that core, stopped and out of the view, starts again as a new kernel, rejoins by agreement and catches up before it serves",
        parse_arguments: |arguments| {
            Ok(Command::CoreOn {
                core: arguments.number("core number")?,
            })
        },
    },
    CommandSpec {
        usage: "core cycle <core> <times>",
        summary: "core off, then core on, that many times; then how long rejoining and catching up took",
        parse_arguments: |arguments| {
            Ok(Command::CoreCycle {
                core: arguments.number("core number")?,
                times: arguments.number("number of cycles")?,
            })
        },
    },
    CommandSpec {
        usage: "scribble <core> <victim>",
        summary: "that core writes into the victim core's memory (or, with `statics`, the kernel's statics): its page tables must make it fault, and the others run on",
        parse_arguments: |arguments| {
            let core = arguments.number("core number")?;
            let victim = match arguments.peek_word() {
                Some("statics") => {
                    arguments.optional_word();
                    Victim::Statics
                }
                _ => Victim::Core(arguments.number("victim core number or `statics`")?),
            };
            Ok(Command::Scribble { core, victim })
        },
    },
    CommandSpec {
        usage: "view detector <ms>",
        summary: "every member suspects a member after ms milliseconds of silence, and sends heartbeats every tenth of it",
        parse_arguments: |arguments| {
            Ok(Command::ViewDetector {
                ms: arguments.number("milliseconds")?,
            })
        },
    },
    CommandSpec {
        usage: "view",
        summary: "the membership view (epoch and members), suspects, and the failure detector's timeouts",
        parse_arguments: |_| Ok(Command::View),
    },
    CommandSpec {
        usage: "stall <core> <ms>",
        summary: "that core answers, then stops polling its rings for ms milliseconds, as a slow core would",
        parse_arguments: |arguments| {
            Ok(Command::Stall {
                core: arguments.number("core number")?,
                ms: arguments.number("milliseconds")?,
            })
        },
    },
    CommandSpec {
        usage: "sleep <ms>",
        summary: "the shell waits ms milliseconds while its core runs its processes and answers (times a fault in a script)",
        parse_arguments: |arguments| {
            Ok(Command::Sleep {
                ms: arguments.number("milliseconds")?,
            })
        },
    },
    CommandSpec {
        usage: "halt",
        summary: "power off",
        parse_arguments: |_| Ok(Command::Halt),
    },
    CommandSpec {
        usage: "urpc ping <from> <to>",
        summary: "URPC round trip from one core to another, in cycles",
        parse_arguments: |arguments| {
            Ok(Command::UrpcPing {
                from: arguments.number("core number")?,
                to: arguments.number("core number")?,
            })
        },
    },
    CommandSpec {
        usage: "vm map <core> <page>",
        summary: "from that core, propose mapping a page of the test space on every core (2PC)",
        parse_arguments: |arguments| {
            Ok(Command::VmMap {
                core: arguments.number("core number")?,
                page: arguments.number("page number")?,
            })
        },
    },
    CommandSpec {
        usage: "vm unmap <core> <page>",
        summary: "from that core, propose unmapping a page (2PC, then TLB shootdown)",
        parse_arguments: |arguments| {
            Ok(Command::VmUnmap {
                core: arguments.number("core number")?,
                page: arguments.number("page number")?,
            })
        },
    },
    CommandSpec {
        usage: "vm span <first> <last>",
        summary: "make cores first to last the test space's holders (while nothing is mapped)",
        parse_arguments: |arguments| {
            Ok(Command::VmSpan {
                first: arguments.number("core number")?,
                last: arguments.number("core number")?,
            })
        },
    },
    CommandSpec {
        usage: "vm show",
        summary: "this core's replica of the test space, checked against its page tables",
        parse_arguments: |_| Ok(Command::VmShow),
    },
    CommandSpec {
        usage: "vm hash",
        summary: "every core's replica hash; fails if they differ",
        parse_arguments: |_| Ok(Command::VmHash),
    },
    CommandSpec {
        usage: "vm storm start <operations>",
        summary: "start a storm and go on with the next commands (fault or hang cores in mid-storm)",
        parse_arguments: |arguments| {
            Ok(Command::VmStormStart {
                operations: arguments.number("operation count")?,
            })
        },
    },
    CommandSpec {
        usage: "vm storm wait",
        summary: "wait for the started storm: every proposal committed or aborted; replicas must agree",
        parse_arguments: |_| Ok(Command::VmStormWait),
    },
    CommandSpec {
        usage: "vm storm own <operations>",
        summary: "every core maps and unmaps pages of its own that many times at once: all must commit",
        parse_arguments: |arguments| {
            Ok(Command::VmStorm {
                operations: arguments.number("operation count")?,
                own: true,
            })
        },
    },
    CommandSpec {
        usage: "vm storm <operations>",
        summary: "every core proposes that many conflicting maps and unmaps at once; replicas must agree",
        parse_arguments: |arguments| {
            Ok(Command::VmStorm {
                operations: arguments.number("operation count")?,
                own: false,
            })
        },
    },
    CommandSpec {
        usage: "bench shootdown",
        summary: "TLB shootdown to 1..all cores: IPI broadcast vs unicast, flat multicast and the knowledge base's tree",
        parse_arguments: |_| Ok(Command::BenchShootdown),
    },
    CommandSpec {
        usage: "bench fig3",
        summary: "the paper's Figure 3: k lines updated under a shared lock vs by messages to their owner",
        parse_arguments: |_| Ok(Command::BenchFig3),
    },
    CommandSpec {
        usage: "bench heartbeats",
        summary: "what heartbeats cost: URPC round trips and map/unmap proposals with heartbeats off, every 100 ms and every 10 ms",
        parse_arguments: |_| Ok(Command::BenchHeartbeats),
    },
    CommandSpec {
        usage: "bench user",
        summary: "what starting and ending a program (true) and a system call (nullcall) cost, in cycles",
        parse_arguments: |_| Ok(Command::BenchUser),
    },
    CommandSpec {
        usage: "bench trace",
        summary: "what tracing costs: URPC round trips and map/unmap proposals with tracing off, on, and off again",
        parse_arguments: |_| Ok(Command::BenchTrace),
    },
    CommandSpec {
        usage: "trace on",
        summary: "every running core records its messages, calls, protocol phases, IPIs and faults",
        parse_arguments: |_| Ok(Command::TraceOn),
    },
    CommandSpec {
        usage: "trace off",
        summary: "every running core stops recording (what it recorded stays)",
        parse_arguments: |_| Ok(Command::TraceOff),
    },
    CommandSpec {
        usage: "trace dump",
        summary: "every running core prints what it recorded, oldest first (cargo xtask trace reads it)",
        parse_arguments: |_| Ok(Command::TraceDump),
    },
    CommandSpec {
        usage: "urpc bench",
        summary: "URPC latency and throughput for every core pair, with IPI and shared-line baselines",
        parse_arguments: |_| Ok(Command::UrpcBench),
    },
    CommandSpec {
        usage: "skb facts [<predicate>]",
        summary: "facts the knowledge base holds, all or one predicate's",
        parse_arguments: |arguments| {
            Ok(Command::SkbFacts {
                predicate: arguments.optional_word().map(String::from),
            })
        },
    },
    CommandSpec {
        usage: "skb query \"<rule body>\"",
        summary: "evaluate a rule body against the knowledge base and print its answers",
        parse_arguments: |arguments| {
            Ok(Command::SkbQuery {
                body: arguments.rest_of_line("rule body")?.into(),
            })
        },
    },
    CommandSpec {
        usage: "skb tree <root>",
        summary: "the multicast tree from that core, from the knowledge base",
        parse_arguments: |arguments| {
            Ok(Command::SkbTree {
                root: arguments.number("core number")?,
            })
        },
    },
];

/// `(usage, summary)` for every command, in the order `help` lists them.
pub fn help_text() -> impl Iterator<Item = (&'static str, &'static str)> {
    COMMANDS.iter().map(|spec| (spec.usage, spec.summary))
}

/// Parses one shell line. A blank line is `Ok(None)`.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    if line
        .chars()
        .any(|c| c.is_control() && !c.is_ascii_whitespace())
    {
        return Err(ParseError::ControlCharacters);
    }
    let mut rest = line;
    let Some(first) = next_word(&mut { line }) else {
        return Ok(None);
    };
    let Some(command_word) = COMMANDS
        .iter()
        .map(CommandSpec::command_word)
        .find(|&word| word == first)
    else {
        return Err(ParseError::UnknownCommand { name: first.into() });
    };
    let spec = COMMANDS
        .iter()
        .find(|spec| spec.take_name(&mut rest))
        .ok_or_else(|| {
            // `rest` is the whole line still: the second word is the subcommand.
            next_word(&mut rest);
            ParseError::UnknownSubcommand {
                command: command_word,
                got: next_word(&mut rest).map(String::from),
            }
        })?;
    let mut arguments = Arguments { spec, rest };
    let command = (spec.parse_arguments)(&mut arguments)?;
    match next_word(&mut arguments.rest) {
        None => Ok(Some(command)),
        Some(_) if !spec.takes_arguments() => Err(ParseError::TakesNoArguments {
            command: spec.name(),
        }),
        Some(extra) => Err(ParseError::UnexpectedArgument {
            command: spec.name(),
            usage: spec.usage,
            got: extra.into(),
        }),
    }
}

/// The line after a command's name, with the spec to name in errors.
struct Arguments<'a> {
    spec: &'static CommandSpec,
    rest: &'a str,
}

impl<'a> Arguments<'a> {
    fn missing(&self, what: &'static str) -> ParseError {
        ParseError::MissingArgument {
            command: self.spec.name(),
            what,
            usage: self.spec.usage,
        }
    }

    /// The next word, if there is one.
    fn optional_word(&mut self) -> Option<&'a str> {
        next_word(&mut self.rest)
    }

    /// The next word, left for the next argument.
    fn peek_word(&self) -> Option<&'a str> {
        next_word(&mut { self.rest })
    }

    /// All the rest of the line, trimmed; if it starts with a double quote
    /// it must end with one, and both are removed (what is between is kept
    /// as it is, quotes included). Blank is missing.
    fn rest_of_line(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        let text = core::mem::take(&mut self.rest).trim_ascii();
        let text = match text.strip_prefix('"') {
            Some(quoted) => quoted
                .strip_suffix('"')
                .ok_or(ParseError::UnterminatedQuote {
                    command: self.spec.name(),
                    usage: self.spec.usage,
                })?,
            None => text,
        };
        if text.trim_ascii().is_empty() {
            return Err(self.missing(what));
        }
        Ok(text)
    }

    /// A program, `--cores LIST` (comma-separated core numbers) if given,
    /// and the rest of the line as its arguments.
    fn launch(&mut self) -> Result<Launch, ParseError> {
        let program = self
            .optional_word()
            .ok_or_else(|| self.missing("program name"))?
            .into();
        let cores = match self.peek_word() {
            Some("--cores") => {
                self.optional_word();
                let list = self
                    .optional_word()
                    .ok_or_else(|| self.missing("core list"))?;
                let cores = list
                    .split(',')
                    .map(|core| {
                        Arguments {
                            spec: self.spec,
                            rest: core,
                        }
                        .number("core list")
                    })
                    .collect::<Result<Vec<u32>, ParseError>>()?;
                Some(cores)
            }
            _ => None,
        };
        let args = core::mem::take(&mut self.rest).trim_ascii().into();
        Ok(Launch {
            program,
            cores,
            args,
        })
    }

    /// The next word as a plain decimal `u32`: digits only, no sign.
    fn number(&mut self, what: &'static str) -> Result<u32, ParseError> {
        let command = self.spec.name();
        let Some(word) = next_word(&mut self.rest) else {
            return Err(self.missing(what));
        };
        if !word.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ParseError::ExpectedNumber {
                command,
                what,
                got: word.into(),
            });
        }
        // All digits, so the only way to fail is overflow.
        word.parse().map_err(|_| ParseError::NumberTooLarge {
            command,
            what,
            got: word.into(),
        })
    }
}

/// Why a line or an exec script could not be read. Its `Display` is one line,
/// safe to print to the terminal whatever the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    ControlCharacters,
    UnknownCommand {
        name: String,
    },
    TakesNoArguments {
        command: &'static str,
    },
    MissingArgument {
        command: &'static str,
        what: &'static str,
        usage: &'static str,
    },
    ExpectedNumber {
        command: &'static str,
        what: &'static str,
        got: String,
    },
    NumberTooLarge {
        command: &'static str,
        what: &'static str,
        got: String,
    },
    UnexpectedArgument {
        command: &'static str,
        usage: &'static str,
        got: String,
    },
    /// Text that starts with a double quote and does not end with one.
    UnterminatedQuote {
        command: &'static str,
        usage: &'static str,
    },
    /// A command with subcommands, without a known one.
    UnknownSubcommand {
        command: &'static str,
        got: Option<String>,
    },
    /// The `atoll.exec=` script on the kernel command line is not UTF-8.
    ExecScriptNotUtf8,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ControlCharacters => write!(f, "line contains control characters"),
            Self::UnknownCommand { name } => {
                write!(f, "unknown command {} (try 'help')", Shown(name))
            }
            Self::TakesNoArguments { command } => write!(f, "{command}: takes no arguments"),
            Self::MissingArgument {
                command,
                what,
                usage,
            } => write!(f, "{command}: missing {what} (usage: {usage})"),
            Self::ExpectedNumber { command, what, got } => {
                write!(f, "{command}: expected a {what}, got {}", Shown(got))
            }
            Self::NumberTooLarge { command, what, got } => write!(
                f,
                "{command}: {what} {} is too large (max {})",
                Shown(got),
                u32::MAX
            ),
            Self::UnexpectedArgument {
                command,
                usage,
                got,
            } => write!(
                f,
                "{command}: unexpected argument {} (usage: {usage})",
                Shown(got)
            ),
            Self::UnterminatedQuote { command, usage } => write!(
                f,
                "{command}: unterminated quote: text that starts with \" must end with \" \
                 (usage: {usage})"
            ),
            Self::UnknownSubcommand { command, got } => {
                match got {
                    Some(got) => write!(f, "{command}: unknown subcommand {} (usage:", Shown(got))?,
                    None => write!(f, "{command}: missing subcommand (usage:")?,
                }
                let forms = COMMANDS
                    .iter()
                    .filter(|spec| spec.command_word() == *command);
                for (index, spec) in forms.enumerate() {
                    write!(f, "{}{}", if index == 0 { " " } else { ", " }, spec.usage)?;
                }
                f.write_char(')')
            }
            Self::ExecScriptNotUtf8 => {
                write!(
                    f,
                    "kernel command line: the atoll.exec= script is not UTF-8"
                )
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// How many bytes of user input an error message shows.
const SHOWN_MAX: usize = 32;

/// User input quoted for an error message: printable ASCII only (other bytes
/// as `\xNN`, a backslash as `\\`) and cut at [`SHOWN_MAX`] bytes, so what
/// the user typed can neither drive the terminal nor flood it.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0.as_bytes();
        f.write_char('\'')?;
        for &byte in bytes.iter().take(SHOWN_MAX) {
            match byte {
                b'\\' => f.write_str("\\\\")?,
                b' '..=b'~' => f.write_char(char::from(byte))?,
                _ => write!(f, "\\x{byte:02x}")?,
            }
        }
        if bytes.len() > SHOWN_MAX {
            write!(f, "...' (cut; {} bytes in all)", bytes.len())
        } else {
            f.write_char('\'')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn error_message(line: &str) -> String {
        parse(line)
            .expect_err("the line should not parse")
            .to_string()
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(parse("help"), Ok(Some(Command::Help)));
        assert_eq!(parse("cores"), Ok(Some(Command::Cores)));
        assert_eq!(parse("mem"), Ok(Some(Command::Mem)));
        assert_eq!(parse("ipi 3"), Ok(Some(Command::Ipi { core: 3 })));
        assert_eq!(parse("fault 1"), Ok(Some(Command::Fault { core: 1 })));
        assert_eq!(parse("hang 3"), Ok(Some(Command::Hang { core: 3 })));
        assert_eq!(parse("core off 2"), Ok(Some(Command::CoreOff { core: 2 })));
        assert_eq!(parse("core on 2"), Ok(Some(Command::CoreOn { core: 2 })));
        assert_eq!(parse("programs"), Ok(Some(Command::Programs)));
        assert_eq!(
            parse("run hello"),
            Ok(Some(Command::Run(Launch {
                program: "hello".into(),
                cores: None,
                args: "".into()
            })))
        );
        assert_eq!(
            parse("run fuzz --cores 3  1000 x "),
            Ok(Some(Command::Run(Launch {
                program: "fuzz".into(),
                cores: Some(alloc::vec![3]),
                args: "1000 x".into()
            })))
        );
        assert_eq!(
            parse("spawn spin --cores 1,2"),
            Ok(Some(Command::Spawn(Launch {
                program: "spin".into(),
                cores: Some(alloc::vec![1, 2]),
                args: "".into()
            })))
        );
        assert_eq!(
            parse("spawn hello a --cores 1"),
            Ok(Some(Command::Spawn(Launch {
                program: "hello".into(),
                cores: None,
                args: "a --cores 1".into()
            }))),
            "--cores counts only right after the program"
        );
        assert_eq!(parse("ps"), Ok(Some(Command::Ps)));
        assert_eq!(parse("kill 1025"), Ok(Some(Command::Kill { pid: 1025 })));
        assert_eq!(
            parse("core cycle 2 100"),
            Ok(Some(Command::CoreCycle {
                core: 2,
                times: 100
            }))
        );
        assert_eq!(
            parse("scribble 2 3"),
            Ok(Some(Command::Scribble {
                core: 2,
                victim: Victim::Core(3)
            }))
        );
        assert_eq!(
            parse("scribble 2 statics"),
            Ok(Some(Command::Scribble {
                core: 2,
                victim: Victim::Statics
            }))
        );
        assert_eq!(
            parse("vm storm start 40"),
            Ok(Some(Command::VmStormStart { operations: 40 }))
        );
        assert_eq!(parse("vm storm wait"), Ok(Some(Command::VmStormWait)));
        assert_eq!(
            parse("vm storm 7"),
            Ok(Some(Command::VmStorm {
                operations: 7,
                own: false
            }))
        );
        assert_eq!(
            parse("vm storm own 9"),
            Ok(Some(Command::VmStorm {
                operations: 9,
                own: true
            }))
        );
        assert_eq!(parse("view"), Ok(Some(Command::View)));
        assert_eq!(
            parse("view detector 2000"),
            Ok(Some(Command::ViewDetector { ms: 2000 }))
        );
        assert_eq!(
            parse("bench heartbeats"),
            Ok(Some(Command::BenchHeartbeats))
        );
        assert_eq!(parse("halt"), Ok(Some(Command::Halt)));
        assert_eq!(
            parse("urpc ping 2 3"),
            Ok(Some(Command::UrpcPing { from: 2, to: 3 }))
        );
        assert_eq!(parse("urpc bench"), Ok(Some(Command::UrpcBench)));
        assert_eq!(
            parse("stall 2 1500"),
            Ok(Some(Command::Stall { core: 2, ms: 1500 }))
        );
        assert_eq!(parse("sleep 250"), Ok(Some(Command::Sleep { ms: 250 })));
        assert_eq!(parse("trace on"), Ok(Some(Command::TraceOn)));
        assert_eq!(parse("trace off"), Ok(Some(Command::TraceOff)));
        assert_eq!(parse("trace dump"), Ok(Some(Command::TraceDump)));
        assert_eq!(parse("bench trace"), Ok(Some(Command::BenchTrace)));
    }

    #[test]
    fn new_commands_check_their_arguments() {
        assert_eq!(
            error_message("spawn hello --cores"),
            "spawn: missing core list (usage: spawn <program> [--cores <list>] [<args>])"
        );
        assert_eq!(
            error_message("run hello --cores 1,x"),
            "run: expected a core list, got 'x'"
        );
        assert_eq!(
            error_message("run hello --cores 1,,2"),
            "run: missing core list (usage: run <program> [--cores <list>] [<args>])"
        );
        assert_eq!(
            error_message("kill"),
            "kill: missing process id (usage: kill <pid>)"
        );
        assert_eq!(error_message("ps 1"), "ps: takes no arguments");
        assert_eq!(
            error_message("stall 2"),
            "stall: missing milliseconds (usage: stall <core> <ms>)"
        );
        assert_eq!(
            error_message("trace"),
            "trace: missing subcommand (usage: trace on, trace off, trace dump)"
        );
        assert_eq!(
            error_message("trace start"),
            "trace: unknown subcommand 'start' (usage: trace on, trace off, trace dump)"
        );
        assert_eq!(
            error_message("trace dump all"),
            "trace dump: takes no arguments"
        );
    }

    #[test]
    fn subcommands_are_checked() {
        let usage = "(usage: urpc ping <from> <to>, urpc bench)";
        assert_eq!(
            error_message("urpc"),
            alloc::format!("urpc: missing subcommand {usage}")
        );
        assert_eq!(
            error_message("urpc pong 1 2"),
            alloc::format!("urpc: unknown subcommand 'pong' {usage}")
        );
        assert_eq!(
            error_message("urpc bench 3"),
            "urpc bench: takes no arguments"
        );
        assert_eq!(
            error_message("urpc ping 1"),
            "urpc ping: missing core number (usage: urpc ping <from> <to>)"
        );
        assert_eq!(error_message("ping"), "unknown command 'ping' (try 'help')");
    }

    #[test]
    fn blank_lines_are_no_command() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse(" \t "), Ok(None));
    }

    #[test]
    fn words_split_on_any_ascii_whitespace() {
        assert_eq!(parse("\t ipi \t 007  "), Ok(Some(Command::Ipi { core: 7 })));
    }

    #[test]
    fn core_numbers_span_u32() {
        assert_eq!(parse("ipi 0"), Ok(Some(Command::Ipi { core: 0 })));
        assert_eq!(
            parse("ipi 4294967295"),
            Ok(Some(Command::Ipi { core: u32::MAX }))
        );
    }

    #[test]
    fn unknown_command() {
        assert_eq!(error_message("foo"), "unknown command 'foo' (try 'help')");
        assert_eq!(
            error_message("CORES"),
            "unknown command 'CORES' (try 'help')"
        );
    }

    #[test]
    fn commands_without_arguments_refuse_them() {
        assert_eq!(error_message("cores all"), "cores: takes no arguments");
        assert_eq!(error_message("halt now"), "halt: takes no arguments");
    }

    #[test]
    fn missing_core_number() {
        assert_eq!(
            error_message("ipi"),
            "ipi: missing core number (usage: ipi <core>)"
        );
        assert_eq!(
            error_message("fault "),
            "fault: missing core number (usage: fault <core>)"
        );
    }

    #[test]
    fn core_number_must_be_plain_decimal() {
        for bad in ["x", "+1", "-1", "0x1", "1.0", "1e3", "١"] {
            assert_eq!(
                error_message(&alloc::format!("ipi {bad}")),
                alloc::format!("ipi: expected a core number, got {}", Shown(bad)),
            );
        }
        assert_eq!(
            error_message("ipi x"),
            "ipi: expected a core number, got 'x'"
        );
        assert_eq!(
            error_message("ipi -1"),
            "ipi: expected a core number, got '-1'"
        );
    }

    #[test]
    fn core_number_overflow() {
        assert_eq!(
            error_message("fault 4294967296"),
            "fault: core number '4294967296' is too large (max 4294967295)"
        );
    }

    #[test]
    fn extra_arguments() {
        assert_eq!(
            error_message("ipi 1 2"),
            "ipi: unexpected argument '2' (usage: ipi <core>)"
        );
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(error_message("cores\0"), "line contains control characters");
        assert_eq!(
            error_message("\x1b[2Jcores"),
            "line contains control characters"
        );
        assert_eq!(
            error_message("ipi \u{9b}1"),
            "line contains control characters"
        );
    }

    #[test]
    fn shown_input_is_escaped() {
        assert_eq!(
            error_message("café"),
            "unknown command 'caf\\xc3\\xa9' (try 'help')"
        );
        // A right-to-left override is not a control character but would reorder the line.
        assert_eq!(
            error_message("ipi \u{202e}1"),
            "ipi: expected a core number, got '\\xe2\\x80\\xae1'"
        );
        assert_eq!(
            error_message("a\\x41"),
            "unknown command 'a\\\\x41' (try 'help')"
        );
    }

    #[test]
    fn long_shown_input_is_cut() {
        let long = "y".repeat(100);
        assert_eq!(
            error_message(&long),
            alloc::format!(
                "unknown command '{}...' (cut; 100 bytes in all) (try 'help')",
                &long[..SHOWN_MAX]
            ),
        );
    }

    #[test]
    fn help_lists_every_command_once_with_a_summary() {
        let usages: Vec<_> = help_text().map(|(usage, _)| usage).collect();
        assert_eq!(
            usages,
            [
                "help",
                "cores",
                "mem",
                "ipi <core>",
                "fault <core>",
                "hang <core>",
                "core off <core>",
                "programs",
                "run <program> [--cores <list>] [<args>]",
                "spawn <program> [--cores <list>] [<args>]",
                "ps",
                "kill <pid>",
                "core on <core>",
                "core cycle <core> <times>",
                "scribble <core> <victim>",
                "view detector <ms>",
                "view",
                "stall <core> <ms>",
                "sleep <ms>",
                "halt",
                "urpc ping <from> <to>",
                "vm map <core> <page>",
                "vm unmap <core> <page>",
                "vm span <first> <last>",
                "vm show",
                "vm hash",
                "vm storm start <operations>",
                "vm storm wait",
                "vm storm own <operations>",
                "vm storm <operations>",
                "bench shootdown",
                "bench fig3",
                "bench heartbeats",
                "bench user",
                "bench trace",
                "trace on",
                "trace off",
                "trace dump",
                "urpc bench",
                "skb facts [<predicate>]",
                "skb query \"<rule body>\"",
                "skb tree <root>",
            ]
        );
        assert!(help_text().all(|(_, summary)| !summary.is_empty() && !summary.contains('\n')));
        let names: Vec<_> = COMMANDS.iter().map(CommandSpec::name).collect();
        for (index, name) in names.iter().enumerate() {
            assert!(!names[..index].contains(name), "{name} is listed twice");
            assert!(!name.contains(['<', '[', '"']), "{name} is not a name");
        }
    }

    /// The usage with every `<placeholder>` (which may hold spaces) replaced
    /// by `1`, once without and once with each `[optional]` part.
    fn examples(usage: &str) -> Vec<String> {
        if let Some(open) = usage.find('[') {
            let close = open + usage[open..].find(']').expect("`[` is closed");
            let (before, inside, after) =
                (&usage[..open], &usage[open + 1..close], &usage[close + 1..]);
            let without = alloc::format!("{}{after}", before.trim_end());
            let with = alloc::format!("{before}{inside}{after}");
            return examples(&without)
                .into_iter()
                .chain(examples(&with))
                .collect();
        }
        let mut example = String::new();
        let mut rest = usage;
        while let Some(open) = rest.find('<') {
            let close = open + rest[open..].find('>').expect("`<` is closed");
            example.push_str(&rest[..open]);
            example.push('1');
            rest = &rest[close + 1..];
        }
        example.push_str(rest);
        alloc::vec![example]
    }

    #[test]
    fn every_usage_in_help_parses_with_example_arguments() {
        let mut all = Vec::new();
        for (usage, _) in help_text() {
            for example in examples(usage) {
                assert!(
                    !example.contains(['<', '>', '[', ']']),
                    "{usage}: placeholder left in {example}"
                );
                assert!(
                    matches!(parse(&example), Ok(Some(_))),
                    "{usage} does not parse as {example}"
                );
                all.push(example);
            }
        }
        assert!(all.contains(&"skb facts".into()));
        assert!(all.contains(&"skb facts 1".into()));
        assert!(all.contains(&"skb query \"1\"".into()));
    }

    #[test]
    fn usage_names_end_before_the_first_argument() {
        let name_of = |usage| {
            CommandSpec {
                usage,
                summary: "",
                parse_arguments: |_| Ok(Command::Help),
            }
            .name()
        };
        assert_eq!(name_of("skb facts [<predicate>]"), "skb facts");
        assert_eq!(name_of("skb query \"<rule body>\""), "skb query");
        assert_eq!(name_of("urpc ping <from> <to>"), "urpc ping");
        assert_eq!(name_of("x [<a>] <b>"), "x");
        assert_eq!(name_of("vm show"), "vm show");
    }

    #[test]
    fn skb_facts_takes_an_optional_predicate() {
        assert_eq!(
            parse("skb facts"),
            Ok(Some(Command::SkbFacts { predicate: None }))
        );
        assert_eq!(
            parse(" skb \t facts  core_of  "),
            Ok(Some(Command::SkbFacts {
                predicate: Some("core_of".into())
            }))
        );
        assert_eq!(
            error_message("skb facts a b"),
            "skb facts: unexpected argument 'b' (usage: skb facts [<predicate>])"
        );
    }

    #[test]
    fn skb_query_takes_the_rest_of_the_line() {
        let query = |line| match parse(line) {
            Ok(Some(Command::SkbQuery { body })) => body,
            other => panic!("{line:?} gave {other:?}"),
        };
        assert_eq!(
            query("skb query \"package(C, P), C != 0\""),
            "package(C, P), C != 0"
        );
        assert_eq!(
            query("  skb  query   package(C, P),  C != 0 \t"),
            "package(C, P),  C != 0"
        );
        // Only the outer quotes go; what is inside stays as it is.
        assert_eq!(
            query("skb query \" name(X, \"a; b\") \" "),
            " name(X, \"a; b\") "
        );
        assert_eq!(query("skb query a(\"x\")"), "a(\"x\")");
        assert_eq!(query("skb query a(X); b(X)"), "a(X); b(X)");
    }

    #[test]
    fn skb_query_needs_a_body_in_closed_quotes() {
        let missing = "skb query: missing rule body (usage: skb query \"<rule body>\")";
        for line in [
            "skb query",
            "skb query   ",
            "skb query \"\"",
            "skb query \"  \"",
        ] {
            assert_eq!(error_message(line), missing, "{line:?}");
        }
        let unterminated = "skb query: unterminated quote: text that starts with \" must end with \" \
                            (usage: skb query \"<rule body>\")";
        for line in ["skb query \"", "skb query \"a(X)", "skb query \"a(X)\" b"] {
            assert_eq!(error_message(line), unterminated, "{line:?}");
        }
        // A lone closing quote has nothing to close: it is part of the body.
        assert_eq!(
            parse("skb query a(X)\""),
            Ok(Some(Command::SkbQuery {
                body: "a(X)\"".into()
            }))
        );
    }

    #[test]
    fn skb_tree_takes_a_root_core() {
        assert_eq!(parse("skb tree 2"), Ok(Some(Command::SkbTree { root: 2 })));
        assert_eq!(
            error_message("skb tree"),
            "skb tree: missing core number (usage: skb tree <root>)"
        );
        assert_eq!(
            error_message("skb tree x"),
            "skb tree: expected a core number, got 'x'"
        );
        assert_eq!(
            error_message("skb tree 1 2"),
            "skb tree: unexpected argument '2' (usage: skb tree <root>)"
        );
    }

    #[test]
    fn skb_lists_its_subcommands() {
        let usage = "(usage: skb facts [<predicate>], skb query \"<rule body>\", skb tree <root>)";
        assert_eq!(
            error_message("skb"),
            alloc::format!("skb: missing subcommand {usage}")
        );
        assert_eq!(
            error_message("skb rules"),
            alloc::format!("skb: unknown subcommand 'rules' {usage}")
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_errors_print_only_printable_ascii(line in "(?s).*") {
            if let Err(error) = parse(&line) {
                let message = error.to_string();
                prop_assert!(message.bytes().all(|byte| (b' '..=b'~').contains(&byte)), "{}", message);
            }
        }

        #[test]
        fn parse_never_panics_on_skb_lines(
            subcommand in "(facts|query|tree|)",
            rest in "(?s)[ \t\"a-z0-9(),;!=]{0,12}|.{0,12}",
        ) {
            if let Err(error) = parse(&alloc::format!("skb {subcommand} {rest}")) {
                let message = error.to_string();
                prop_assert!(message.bytes().all(|byte| (b' '..=b'~').contains(&byte)), "{}", message);
            }
        }

        #[test]
        fn parse_reads_any_core_number(core: u32, padding in "[ \t]{0,3}") {
            prop_assert_eq!(
                parse(&alloc::format!("{padding}fault{padding} {core}{padding}")),
                Ok(Some(Command::Fault { core }))
            );
            prop_assert_eq!(
                parse(&alloc::format!("{padding}skb{padding} tree {core}{padding}")),
                Ok(Some(Command::SkbTree { root: core }))
            );
        }

        #[test]
        fn skb_query_keeps_a_quoted_body_as_it_is(
            body in "[ -~]*[!-~][ -~]*",
            padding in "[ \t]{0,3}",
        ) {
            prop_assert_eq!(
                parse(&alloc::format!("skb query{padding} \"{body}\"{padding}")),
                Ok(Some(Command::SkbQuery { body }))
            );
        }

        #[test]
        fn skb_query_trims_an_unquoted_body(body in "[!#-~]([ -~]*[!-~])?", padding in "[ \t]{0,3}") {
            prop_assert_eq!(
                parse(&alloc::format!("skb query {padding}{body}{padding}")),
                Ok(Some(Command::SkbQuery { body }))
            );
        }
    }
}
