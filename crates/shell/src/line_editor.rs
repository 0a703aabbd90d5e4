//! A line editor for a dumb serial terminal: it receives bytes one at a time,
//! says what to echo, and hands back a whole line when the user ends it.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem;

/// How many submitted lines the editor keeps for the up and down keys.
pub const HISTORY_LEN: usize = 32;

const CTRL_C: u8 = 0x03;
const BACKSPACE: u8 = 0x08;
const CTRL_U: u8 = 0x15;
const ESCAPE: u8 = 0x1b;
const DELETE: u8 = 0x7f;

/// Moves the cursor back one cell, blanks it, and moves back again.
const ERASE_CELL: &[u8] = b"\x08 \x08";

/// What the user submitted when a line ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line, valid UTF-8 and at most `max_len` bytes. It may be empty, and
    /// it may hold control characters (the parser rejects those).
    Text(String),
    /// The line had `len` bytes, more than the editor's `max`; its content is lost.
    TooLong { len: usize, max: usize },
    /// The line's `len` bytes are not valid UTF-8.
    NotUtf8 { len: usize },
    /// Ctrl-C threw the line away; the caller should show a fresh prompt.
    Cancelled,
}

/// How far into an escape sequence the editor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// After ESC.
    Started,
    /// After ESC [ and any parameter or intermediate bytes.
    ControlSequence { has_parameters: bool },
    /// After ESC O (the keypad's "single shift 3" form).
    SingleShift,
}

/// What one byte does to an escape sequence in progress.
enum EscapeStep {
    /// The byte belongs to the sequence and is consumed.
    Swallowed,
    /// The sequence ended as a history key.
    Recall(HistoryKey),
    /// The byte cannot be part of a sequence: the sequence is dropped and the
    /// byte handled on its own, so a stray ESC cannot eat the Enter after it.
    Abandoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HistoryKey {
    Older,
    Newer,
}

/// Turns a stream of bytes from a serial terminal into lines.
///
/// Every byte of the line shows as exactly one cell on the terminal (a
/// printable ASCII byte as itself, a tab as a space, anything else as `?`), so
/// erasing one byte is always `\x08 \x08` and the display never drifts from
/// the buffer. Memory stays bounded: at most `max_len` bytes of the line being
/// typed, plus [`HISTORY_LEN`] lines of at most `max_len` bytes each.
#[derive(Debug, Clone)]
pub struct LineEditor {
    max_len: usize,
    /// The first `min(len, max_len)` bytes of the line.
    stored: Vec<u8>,
    /// The true length of the line, counting bytes beyond `max_len` that were
    /// dropped, so that an over-long line can be reported as such.
    len: usize,
    escape: Option<Escape>,
    /// The CR or LF that ended the previous line, if it was the last byte: the
    /// other one of the pair then belongs to the same line end.
    line_end: Option<u8>,
    /// Oldest first.
    history: VecDeque<String>,
    /// The history entry on display, while the user browses with up and down.
    recalled: Option<usize>,
}

impl LineEditor {
    /// An editor for lines of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            stored: Vec::new(),
            len: 0,
            escape: None,
            line_end: None,
            history: VecDeque::new(),
            recalled: None,
        }
    }

    /// Takes one byte from the terminal. Calls `echo` with whatever should be
    /// written back to the terminal, and returns the line once it ends.
    pub fn feed(&mut self, byte: u8, echo: &mut impl FnMut(&[u8])) -> Option<Line> {
        let previous_line_end = self.line_end.take();
        if let Some(escape) = self.escape.take() {
            match self.continue_escape(escape, byte) {
                EscapeStep::Swallowed => return None,
                EscapeStep::Recall(key) => {
                    self.recall(key, echo);
                    return None;
                }
                EscapeStep::Abandoned => {}
            }
        }
        match byte {
            b'\r' | b'\n' => {
                if previous_line_end.is_some_and(|end| end != byte) {
                    return None;
                }
                self.line_end = Some(byte);
                echo(b"\r\n");
                Some(self.submit())
            }
            CTRL_C => {
                echo(b"^C\r\n");
                self.stored.clear();
                self.len = 0;
                self.recalled = None;
                Some(Line::Cancelled)
            }
            CTRL_U => {
                self.erase_line(echo);
                None
            }
            BACKSPACE | DELETE => {
                if self.len > 0 {
                    self.len -= 1;
                    self.stored.truncate(self.len);
                    echo(ERASE_CELL);
                }
                None
            }
            ESCAPE => {
                self.escape = Some(Escape::Started);
                None
            }
            _ => {
                self.insert(byte, echo);
                None
            }
        }
    }

    fn continue_escape(&mut self, escape: Escape, byte: u8) -> EscapeStep {
        match (escape, byte) {
            (_, 0x00..=0x1f | DELETE..=0xff) => EscapeStep::Abandoned,
            (Escape::Started, b'[') => {
                self.escape = Some(Escape::ControlSequence {
                    has_parameters: false,
                });
                EscapeStep::Swallowed
            }
            (Escape::Started, b'O') => {
                self.escape = Some(Escape::SingleShift);
                EscapeStep::Swallowed
            }
            (Escape::ControlSequence { .. }, 0x20..=0x3f) => {
                self.escape = Some(Escape::ControlSequence {
                    has_parameters: true,
                });
                EscapeStep::Swallowed
            }
            (
                Escape::ControlSequence {
                    has_parameters: false,
                }
                | Escape::SingleShift,
                b'A',
            ) => EscapeStep::Recall(HistoryKey::Older),
            (
                Escape::ControlSequence {
                    has_parameters: false,
                }
                | Escape::SingleShift,
                b'B',
            ) => EscapeStep::Recall(HistoryKey::Newer),
            // A final byte, or the second byte of a two-byte sequence such as Alt+key.
            _ => EscapeStep::Swallowed,
        }
    }

    fn insert(&mut self, byte: u8, echo: &mut impl FnMut(&[u8])) {
        if self.len < self.max_len {
            self.stored.push(byte);
        }
        self.len += 1;
        echo(&[display_cell(byte)]);
    }

    fn erase_line(&mut self, echo: &mut impl FnMut(&[u8])) {
        for _ in 0..self.len {
            echo(ERASE_CELL);
        }
        self.stored.clear();
        self.len = 0;
    }

    fn submit(&mut self) -> Line {
        let len = mem::take(&mut self.len);
        let bytes = mem::take(&mut self.stored);
        self.recalled = None;
        if len > self.max_len {
            return Line::TooLong {
                len,
                max: self.max_len,
            };
        }
        match String::from_utf8(bytes) {
            Ok(text) => {
                self.remember(&text);
                Line::Text(text)
            }
            Err(_) => Line::NotUtf8 { len },
        }
    }

    /// Adds a submitted line to the history, unless it is blank or repeats the
    /// newest entry (neither is worth a key press to get back).
    fn remember(&mut self, text: &str) {
        if text.trim_ascii().is_empty() || self.history.back().is_some_and(|newest| newest == text)
        {
            return;
        }
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(text.into());
    }

    /// Replaces the line with an older or newer history entry; going newer
    /// than the newest entry leaves an empty line.
    fn recall(&mut self, key: HistoryKey, echo: &mut impl FnMut(&[u8])) {
        let Some(newest) = self.history.len().checked_sub(1) else {
            return;
        };
        let target = match (key, self.recalled) {
            (HistoryKey::Older, None) => Some(newest),
            (HistoryKey::Older, Some(index)) => Some(index.saturating_sub(1)),
            (HistoryKey::Newer, None) => return,
            (HistoryKey::Newer, Some(index)) if index < newest => Some(index + 1),
            (HistoryKey::Newer, Some(_)) => None,
        };
        self.recalled = target;
        self.erase_line(echo);
        if let Some(index) = target {
            let entry = self.history[index].clone();
            for byte in entry.bytes() {
                self.insert(byte, echo);
            }
        }
    }
}

/// The one cell a byte of the line occupies on the terminal. Raw control
/// bytes would move the cursor or start escape sequences, so they show as `?`.
fn display_cell(byte: u8) -> u8 {
    match byte {
        b' '..=b'~' => byte,
        b'\t' => b' ',
        _ => b'?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    const UP: &[u8] = b"\x1b[A";
    const DOWN: &[u8] = b"\x1b[B";

    /// Feeds `input` and returns every line that ended, and everything echoed.
    fn type_bytes(editor: &mut LineEditor, input: &[u8]) -> (Vec<Line>, Vec<u8>) {
        let mut echoed = Vec::new();
        let mut lines = Vec::new();
        for &byte in input {
            lines.extend(editor.feed(byte, &mut |bytes: &[u8]| echoed.extend_from_slice(bytes)));
        }
        (lines, echoed)
    }

    fn lines_of(max_len: usize, input: &[u8]) -> Vec<Line> {
        type_bytes(&mut LineEditor::new(max_len), input).0
    }

    fn text(line: &str) -> Line {
        Line::Text(line.into())
    }

    #[test]
    fn printable_bytes_are_echoed_and_returned_on_enter() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), b"ipi 1\r");
        assert_eq!(lines, [text("ipi 1")]);
        assert_eq!(echoed, b"ipi 1\r\n");
    }

    #[test]
    fn nothing_is_returned_before_the_line_ends() {
        assert_eq!(lines_of(80, b"cores"), []);
    }

    #[test]
    fn backspace_and_delete_remove_the_last_byte_and_erase_its_cell() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), b"abc\x08d\x7f\x7fe\r");
        assert_eq!(lines, [text("ae")]);
        assert_eq!(echoed, b"abc\x08 \x08d\x08 \x08\x08 \x08e\r\n");
    }

    #[test]
    fn backspace_on_an_empty_line_does_nothing() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), b"\x08\x7fa\r");
        assert_eq!(lines, [text("a")]);
        assert_eq!(echoed, b"a\r\n");
    }

    #[test]
    fn cr_lf_and_lf_cr_each_end_one_line() {
        assert_eq!(
            lines_of(80, b"a\r\nb\n\rc\nd\r"),
            [text("a"), text("b"), text("c"), text("d")]
        );
    }

    #[test]
    fn repeated_line_ends_give_empty_lines() {
        assert_eq!(lines_of(80, b"\r\r\n\n"), [text(""), text(""), text("")]);
        assert_eq!(lines_of(80, b"\r\n\r\n"), [text(""), text("")]);
    }

    #[test]
    fn ctrl_c_discards_the_line() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), b"halt\x03mem\r");
        assert_eq!(lines, [Line::Cancelled, text("mem")]);
        assert_eq!(echoed, b"halt^C\r\nmem\r\n");
    }

    #[test]
    fn ctrl_u_clears_the_line() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), b"ab\x15c\r");
        assert_eq!(lines, [text("c")]);
        assert_eq!(echoed, b"ab\x08 \x08\x08 \x08c\r\n");
    }

    #[test]
    fn up_and_down_walk_the_history_and_redraw() {
        let mut editor = LineEditor::new(80);
        type_bytes(&mut editor, b"cores\rmem\rx");
        let (_, echoed) = type_bytes(&mut editor, UP);
        assert_eq!(echoed, b"\x08 \x08mem");
        let (_, echoed) = type_bytes(&mut editor, UP);
        assert_eq!(echoed, b"\x08 \x08\x08 \x08\x08 \x08cores");
        let (_, echoed) = type_bytes(&mut editor, UP);
        assert!(echoed.ends_with(b"cores"), "stays at the oldest entry");
        let (lines, _) = type_bytes(&mut editor, &[DOWN, b"\r"].concat());
        assert_eq!(lines, [text("mem")]);
    }

    #[test]
    fn down_past_the_newest_entry_gives_an_empty_line() {
        let mut editor = LineEditor::new(80);
        type_bytes(&mut editor, b"cores\r");
        let (lines, _) = type_bytes(&mut editor, &[UP, DOWN, b"mem\r"].concat());
        assert_eq!(lines, [text("mem")]);
    }

    #[test]
    fn keypad_mode_arrows_also_recall() {
        let mut editor = LineEditor::new(80);
        let (lines, _) = type_bytes(&mut editor, b"mem\r\x1bOA\r");
        assert_eq!(lines, [text("mem"), text("mem")]);
    }

    #[test]
    fn a_recalled_line_can_be_edited() {
        let mut editor = LineEditor::new(80);
        let (lines, _) = type_bytes(&mut editor, &[b"ipi 1\r", UP, b"\x7f2\r"].concat());
        assert_eq!(lines, [text("ipi 1"), text("ipi 2")]);
    }

    #[test]
    fn history_keeps_the_last_lines_without_blanks_or_repeats() {
        let mut editor = LineEditor::new(80);
        for n in 0..40 {
            type_bytes(&mut editor, alloc::format!("ipi {n}\r").as_bytes());
        }
        type_bytes(&mut editor, b"ipi 39\r   \r\r");
        assert_eq!(editor.history.len(), HISTORY_LEN);
        assert_eq!(editor.history.front().map(String::as_str), Some("ipi 8"));
        assert_eq!(editor.history.back().map(String::as_str), Some("ipi 39"));
        let (lines, _) = type_bytes(&mut editor, &[UP, UP, b"\r"].concat());
        assert_eq!(lines, [text("ipi 38")]);
    }

    #[test]
    fn up_with_no_history_does_nothing() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), &[b"a", UP, b"\r"].concat());
        assert_eq!(lines, [text("a")]);
        assert_eq!(echoed, b"a\r\n");
    }

    #[test]
    fn other_escape_sequences_are_swallowed_whole() {
        // Right arrow, Ctrl+Left, F1 in keypad form, Alt+x, and up with a modifier.
        let (lines, echoed) = type_bytes(
            &mut LineEditor::new(80),
            b"a\x1b[Cb\x1b[1;5Dc\x1bOPd\x1bxe\x1b[1;2Af\r",
        );
        assert_eq!(lines, [text("abcdef")]);
        assert_eq!(echoed, b"abcdef\r\n");
    }

    #[test]
    fn a_control_byte_abandons_an_escape_sequence_and_still_acts() {
        assert_eq!(lines_of(80, b"ab\x1b\r"), [text("ab")]);
        assert_eq!(lines_of(80, b"ab\x1b[1\r"), [text("ab")]);
        assert_eq!(lines_of(80, b"ab\x1b\x7f\r"), [text("a")]);
    }

    #[test]
    fn a_long_line_reports_its_true_length() {
        let mut editor = LineEditor::new(4);
        let (lines, _) = type_bytes(&mut editor, b"abcdefg\rok\r");
        assert_eq!(lines, [Line::TooLong { len: 7, max: 4 }, text("ok")]);
        assert_eq!(
            editor.history.len(),
            1,
            "an over-long line is not remembered"
        );
    }

    #[test]
    fn deleting_back_under_the_limit_recovers_the_line() {
        assert_eq!(lines_of(4, b"abcdef\x7f\x7f\r"), [text("abcd")]);
        assert_eq!(lines_of(4, b"abcdef\x7f\x7f\x7fx\r"), [text("abcx")]);
    }

    #[test]
    fn invalid_utf8_is_reported_and_not_echoed_raw() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), b"a\xff\xc3\r");
        assert_eq!(lines, [Line::NotUtf8 { len: 3 }]);
        assert_eq!(echoed, b"a??\r\n");
    }

    #[test]
    fn valid_utf8_and_control_bytes_end_up_in_the_text() {
        let (lines, echoed) = type_bytes(&mut LineEditor::new(80), "é\0\t\r".as_bytes());
        assert_eq!(lines, [text("é\0\t")]);
        assert_eq!(echoed, b"??? \r\n");
    }

    /// Printable ASCII, the bytes a user types that the editor keeps as they are.
    fn printable() -> impl Strategy<Value = u8> {
        b' '..=b'~'
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_memory_stays_bounded(
            max_len in 0usize..40,
            input in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut editor = LineEditor::new(max_len);
            for byte in input {
                if let Some(Line::Text(line)) = editor.feed(byte, &mut |_: &[u8]| {}) {
                    prop_assert!(line.len() <= max_len);
                }
                prop_assert!(editor.stored.len() <= max_len);
                prop_assert!(editor.history.len() <= HISTORY_LEN);
                prop_assert!(editor.history.iter().all(|entry| entry.len() <= max_len));
            }
        }

        #[test]
        fn a_typed_printable_line_comes_back_exactly(line in "[ -~]{0,80}") {
            let (lines, echoed) = type_bytes(&mut LineEditor::new(80), &[line.as_bytes(), b"\r"].concat());
            prop_assert_eq!(echoed, [line.as_bytes(), b"\r\n"].concat());
            prop_assert_eq!(lines, vec![Line::Text(line)]);
        }

        #[test]
        fn extra_bytes_each_deleted_leave_the_original(
            leading_extras in proptest::collection::vec((printable(), any::<bool>()), 0..4),
            keys in proptest::collection::vec(
                (printable(), proptest::collection::vec((printable(), any::<bool>()), 0..3)),
                0..40,
            ),
        ) {
            let mut input = Vec::new();
            let mut original = String::new();
            fn add_extras(input: &mut Vec<u8>, extras: &[(u8, bool)]) {
                for &(extra, use_backspace) in extras {
                    input.extend([extra, if use_backspace { BACKSPACE } else { DELETE }]);
                }
            }
            add_extras(&mut input, &leading_extras);
            for (key, extras) in &keys {
                input.push(*key);
                original.push(char::from(*key));
                add_extras(&mut input, extras);
            }
            input.push(b'\r');
            prop_assert_eq!(lines_of(40, &input), vec![Line::Text(original)]);
        }
    }
}
