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
        let mut out = format!("error: {}\n", self.message);
        let (line, col) = self.line_col(self.span.start);
        let shown_line = line + self.line_offset;
        out += &format!(" --> {}:{}:{}\n", self.origin, shown_line, col);
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
            out += &format!("{gutter} = note: {n}\n");
        }
        for h in &self.help {
            out += &format!("{gutter} = help: {h}\n");
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
/// with `…` marking cut ends.
struct Window {
    text: String,
    first: usize,
    last: usize,
    /// Columns the leading `…` occupies.
    shift: usize,
}

impl Window {
    fn around(line: &str, focus: usize) -> Window {
        let chars: Vec<char> = line.chars().collect();
        if chars.len() <= MAX_LINE {
            return Window {
                text: line.to_string(),
                first: 1,
                last: chars.len() + 1,
                shift: 0,
            };
        }
        let first = focus.saturating_sub(MAX_LINE / 2).max(1);
        let last = (first + MAX_LINE - 1).min(chars.len());
        let mut text: String = chars[first - 1..last].iter().collect();
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
        }
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
    let width = end.saturating_sub(c0).max(1);
    let pad = " ".repeat(c0 - win.first + win.shift);
    let marks: String = std::iter::repeat_n(mark, width).collect();
    let sep = if text.is_empty() { "" } else { " " };
    Some(format!("{gutter} | {pad}{marks}{sep}{text}\n"))
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
