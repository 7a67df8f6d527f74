//! Diagnostics that point at the input: a message, a primary span with a
//! caret, optional secondary labels, and optional help lines.
//!
//! Rendering is deterministic so tests can compare it as an exact string:
//!
//! ```text
//! error: missing `)`: the `(` after `f` is never closed
//!  --> formula:1:7
//!   |
//! 1 | f(x, 1
//!   |       ^ expected `)` here
//!   |  - this `(` is never closed
//! ```
//!
//! Control characters (NUL, DEL, escape sequences, …) and invisible
//! direction overrides are never echoed raw: messages show them as
//! `\u{0}`, `\u{7f}`, and carets stay under the right character.

use std::borrow::Cow;
use std::fmt;

/// A half-open byte range `[start, end)` into the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// An empty span at one position (e.g. "expected `)` here").
    pub fn at(pos: usize) -> Span {
        Span::new(pos, pos)
    }

    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A secondary annotation: a span and what to say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// An error about user input, with everything needed to render it. Boxed
/// so that `Result<_, Diagnostic>` stays one pointer wide on the happy path;
/// the fields are reached through `Deref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic(Box<DiagnosticData>);

impl std::ops::Deref for Diagnostic {
    type Target = DiagnosticData;
    fn deref(&self) -> &DiagnosticData {
        &self.0
    }
}

impl std::ops::DerefMut for Diagnostic {
    fn deref_mut(&mut self) -> &mut DiagnosticData {
        &mut self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagnosticData {
    pub message: String,
    pub span: Span,
    pub label: String,
    pub secondary: Vec<Label>,
    pub help: Vec<String>,
    /// The full text the spans index into.
    pub source: String,
    /// Where the text came from: `formula`, a file name, `prelude`.
    pub origin: String,
    /// Added to the rendered line numbers (for one line taken from a file).
    pub line_offset: usize,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic(Box::new(DiagnosticData {
            message: message.into(),
            span,
            label: label.into(),
            secondary: Vec::new(),
            help: Vec::new(),
            source: String::new(),
            origin: "formula".to_string(),
            line_offset: 0,
        }))
    }

    /// The same diagnostic with its primary span moved.
    pub fn with_span(mut self, span: Span) -> Diagnostic {
        self.span = span;
        self
    }

    pub fn with_secondary(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    /// Attach the source text and its origin; spans index into `source`.
    pub fn with_source(mut self, source: &str, origin: &str) -> Diagnostic {
        self.source = source.to_string();
        self.origin = origin.to_string();
        self
    }

    /// Render line numbers as if `source` started at line `first_line` of
    /// the origin (used for one formula per line of a file).
    pub fn at_line(mut self, first_line: usize) -> Diagnostic {
        self.line_offset = first_line.saturating_sub(1);
        self
    }

    /// 1-based (line, column) of a byte offset, columns counted in chars.
    pub fn line_col(&self, pos: usize) -> (usize, usize) {
        line_col(&self.source, pos)
    }

    /// The rendered report, as printed on stderr.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", escape_controls(&self.message));
        let (line, col) = self.line_col(self.span.start);
        let shown_line = line + self.line_offset;
        let origin = escape_controls(&self.origin);
        out += &format!(" --> {origin}:{shown_line}:{col}\n");
        let gutter = " ".repeat(digits(shown_line.max(self.secondary_max_line())));
        out += &format!("{gutter} |\n");
        let mut lines: Vec<usize> = vec![line];
        for l in &self.secondary {
            let (sl, _) = self.line_col(l.span.start);
            if !lines.contains(&sl) {
                lines.push(sl);
            }
        }
        lines.sort_unstable();
        let mut notes = Vec::new();
        for l in lines {
            let num = l + self.line_offset;
            let focus = if l == line {
                col
            } else {
                self.secondary
                    .iter()
                    .map(|s| self.line_col(s.span.start))
                    .find(|&(sl, _)| sl == l)
                    .map_or(1, |(_, c)| c)
            };
            let win = Window::around(source_line(&self.source, l), focus);
            out += &format!("{num:>w$} | {}\n", win.text, w = gutter.len());
            let mut marks: Vec<(Span, char, &str)> = Vec::new();
            if l == line {
                marks.push((self.span, '^', &self.label));
            }
            for s in &self.secondary {
                if self.line_col(s.span.start).0 == l {
                    marks.push((s.span, '-', &s.text));
                }
            }
            for (span, mark, text) in marks {
                match annotation(&gutter, &self.source, span, mark, text, &win) {
                    Some(row) => out += &row,
                    None => notes.push(format!("{text} (column {})", self.line_col(span.start).1)),
                }
            }
        }
        for n in notes {
            out += &format!("{gutter} = note: {}\n", escape_controls(&n));
        }
        for h in &self.help {
            out += &format!("{gutter} = help: {}\n", escape_controls(h));
        }
        out
    }

    fn secondary_max_line(&self) -> usize {
        self.secondary
            .iter()
            .map(|s| self.line_col(s.span.start).0 + self.line_offset)
            .max()
            .unwrap_or(0)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Diagnostic {}

/// `s` with every control character (C0, DEL, C1) and every invisible
/// formatting character that can reorder or hide text (zero-width spaces
/// and joiners, direction marks, embeddings, overrides and isolates, the
/// byte-order mark) written as `\u{HEX}`.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out += &format!("\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// One source character as shown: a tab as one space (so carets stay
/// aligned), other escaped characters as `\u{HEX}`.
fn shown(c: char) -> Cow<'static, str> {
    match c {
        '\t' => Cow::Borrowed(" "),
        c if needs_escape(c) => Cow::Owned(format!("\\u{{{:x}}}", c as u32)),
        c => Cow::Owned(c.to_string()),
    }
}

fn digits(n: usize) -> usize {
    n.max(1).to_string().len()
}

/// 1-based line and char column of byte offset `pos` in `src`.
pub fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = floor_char_boundary(src, pos.min(src.len()));
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, src[line_start..pos].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut pos: usize) -> usize {
    while !s.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

fn source_line(src: &str, line: usize) -> &str {
    src.split('\n')
        .nth(line - 1)
        .unwrap_or("")
        .trim_end_matches('\r')
}

/// Longest source line shown whole; longer lines show a window.
const MAX_LINE: usize = 100;

/// The visible part of a source line: columns `first..=last` (1-based),
/// with `…` marking cut ends, and the width each column takes on screen.
struct Window {
    text: String,
    first: usize,
    last: usize,
    /// Columns the leading `…` occupies.
    shift: usize,
    /// Screen width of each column of the line (1, or more for a
    /// character shown escaped).
    widths: Vec<usize>,
}

impl Window {
    fn around(line: &str, focus: usize) -> Window {
        let chars: Vec<char> = line.chars().collect();
        let widths = chars.iter().map(|&c| shown(c).chars().count()).collect();
        let (first, last) = if chars.len() <= MAX_LINE {
            (1, chars.len())
        } else {
            let first = focus.saturating_sub(MAX_LINE / 2).max(1);
            (first, (first + MAX_LINE - 1).min(chars.len()))
        };
        let mut text: String = chars[first - 1..last].iter().map(|&c| shown(c)).collect();
        let shift = usize::from(first > 1);
        if first > 1 {
            text.insert(0, '…');
        }
        if last < chars.len() {
            text.push('…');
        }
        Window {
            text,
            first,
            last: last + 1,
            shift,
            widths,
        }
    }

    /// Screen width of columns `from..to` (columns past the line count 1).
    fn width(&self, from: usize, to: usize) -> usize {
        (from..to)
            .map(|c| self.widths.get(c - 1).copied().unwrap_or(1))
            .sum()
    }
}

/// One annotation row: markers under the span (at least one), then text;
/// `None` if the span starts outside the visible window.
fn annotation(
    gutter: &str,
    src: &str,
    span: Span,
    mark: char,
    text: &str,
    win: &Window,
) -> Option<String> {
    let (l0, c0) = line_col(src, span.start);
    let (l1, c1) = line_col(src, span.end);
    if c0 < win.first || c0 > win.last {
        return None;
    }
    let end = if l1 == l0 { c1.min(win.last) } else { c0 + 1 };
    let width = win.width(c0, end.max(c0)).max(1);
    let pad = " ".repeat(win.width(win.first, c0) + win.shift);
    let marks: String = std::iter::repeat_n(mark, width).collect();
    let sep = if text.is_empty() { "" } else { " " };
    Some(format!(
        "{gutter} | {pad}{marks}{sep}{}\n",
        escape_controls(text)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars_and_lines() {
        let src = "ab\ncdé f";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        assert_eq!(line_col(src, src.len()), (2, 6));
    }

    #[test]
    fn long_lines_show_a_window_around_the_caret() {
        let src = format!("{}x{}", "(".repeat(300), ")".repeat(300));
        let d = Diagnostic::new("deep", Span::at(300), "here")
            .with_secondary(Span::at(0), "first")
            .with_source(&src, "formula");
        let r = d.render();
        let shown = r.lines().nth(3).unwrap();
        assert!(
            shown.starts_with("1 | …(") && shown.ends_with(")…"),
            "{shown}"
        );
        assert!(shown.chars().count() < 120);
        let caret = r.lines().nth(4).unwrap();
        assert_eq!(
            caret.find('^').unwrap() - 4,
            shown[4..].chars().position(|c| c == 'x').unwrap()
        );
        assert!(r.contains("= note: first (column 1)"), "{r}");
    }

    #[test]
    fn control_characters_are_escaped_and_carets_stay_aligned() {
        let src = "a\u{0}b\u{7f}\u{202e}+c";
        let plus = src.find('+').unwrap();
        let d = Diagnostic::new(
            "found `\u{0}` and `\u{1b}[31m`",
            Span::new(plus, plus + 1),
            "at \u{7f}",
        )
        .with_help("no \u{9f} here")
        .with_source(src, "file\u{1}.txt");
        let r = d.render();
        assert_eq!(
            r,
            "error: found `\\u{0}` and `\\u{1b}[31m`\n --> file\\u{1}.txt:1:6\n  |\n1 | a\\u{0}b\\u{7f}\\u{202e}+c\n  |                      ^ at \\u{7f}\n  = help: no \\u{9f} here\n"
        );
        assert!(!r.chars().any(|c| c.is_control() && c != '\n'), "{r:?}");
        let (shown, caret) = (r.lines().nth(3).unwrap(), r.lines().nth(4).unwrap());
        assert_eq!(shown.find('+'), caret.find('^'));
    }

    #[test]
    fn tabs_show_as_one_space_under_the_caret() {
        let d = Diagnostic::new("m", Span::new(2, 3), "here").with_source("\t\t)", "f");
        assert_eq!(
            d.render(),
            "error: m\n --> f:1:3\n  |\n1 |   )\n  |   ^ here\n"
        );
    }

    #[test]
    fn escape_controls_leaves_ordinary_text_alone() {
        assert!(matches!(
            escape_controls("safe_div(x, é)"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_controls("\u{feff}x\u{0}"), "\\u{feff}x\\u{0}");
    }

    #[test]
    fn renders_primary_secondary_and_help() {
        let d = Diagnostic::new("boom", Span::new(2, 4), "here")
            .with_secondary(Span::at(0), "start")
            .with_help("try again")
            .with_source("f(xy", "formula");
        assert_eq!(
            d.render(),
            "error: boom\n --> formula:1:3\n  |\n1 | f(xy\n  |   ^^ here\n  | - start\n  = help: try again\n"
        );
    }
}
