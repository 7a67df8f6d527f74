//! The run report: one self-contained HTML page from plain data (titles,
//! paragraphs, key/value lists, tables of text and numbers, SVG figures
//! drawn by [`super::chart`]). A leaf: it knows no formula, model or
//! search; callers turn a run directory into a [`Page`].
//!
//! The page fetches nothing and can be mailed: the CSS and the small
//! click-to-sort script are inline, figures are inline SVG, and a
//! Content-Security-Policy forbids every fetch. Tables are plain HTML
//! rows, so the page reads the same with JavaScript off; the script only
//! adds sorting by a click on a column header.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::store::files::write_atomic;

/// The page's file name in a run directory.
pub const FILE_NAME: &str = "report.html";

/// A whole page: a title, a line under it, sections top to bottom.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub title: String,
    pub subtitle: String,
    pub sections: Vec<Section>,
    /// Small print at the bottom (what wrote the page).
    pub footer: String,
}

/// A titled part of the page; `id` is its anchor in the contents.
#[derive(Clone, Debug, Default)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub blocks: Vec<Block>,
}

/// How a verdict or tag reads: good (green), bad (red), neutral (grey),
/// caution (amber).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Neutral,
    Caution,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Bad => "bad",
            Tone::Neutral => "neutral",
            Tone::Caution => "caution",
        }
    }
}

/// An SVG image drawn by this module's charts (the only way to make one,
/// so a page never inlines markup from elsewhere).
#[derive(Clone, Debug, PartialEq)]
pub struct Svg(String);

impl Svg {
    /// Wrap plotters' SVG output (`<svg …>…</svg>`, text escaped).
    pub(super) fn from_plotters(text: String) -> Svg {
        debug_assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(40)]);
        Svg(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A figure with its caption.
#[derive(Clone, Debug)]
pub struct Figure {
    pub svg: Svg,
    pub caption: String,
}

/// One piece of a section.
#[derive(Clone, Debug)]
pub enum Block {
    Text(String),
    /// Muted small print (caveats, how a number was made).
    Note(String),
    /// A highlighted sentence (a verdict).
    Callout(Tone, String),
    /// Key/value pairs.
    Facts(Vec<(String, Cell)>),
    Table(Table),
    /// Figures side by side (wrapping).
    Figures(Vec<Figure>),
    /// Preformatted text (code, a command).
    Code(String),
    /// Blocks folded under a one-line summary (HTML `<details>`: opens
    /// with a click, no script needed).
    Details(String, Vec<Block>),
}

/// A table; with `sortable`, a click on a header sorts by that column
/// (numbers by value, the rest as text).
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub sortable: bool,
}

/// One cell (or one value of [`Block::Facts`]).
#[derive(Clone, Debug)]
pub enum Cell {
    Text(String),
    /// Monospace (formulas, file names, hashes).
    Code(String),
    /// A number: `value` sorts, `text` shows.
    Num {
        value: f64,
        text: String,
    },
    Tag(Tone, String),
    Figure(Svg),
    /// A link to a file of the run directory: a relative path; anything
    /// with a scheme or starting with `/` shows as text.
    Link {
        href: String,
        text: String,
    },
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn code(s: impl Into<String>) -> Cell {
        Cell::Code(s.into())
    }

    /// A number shown with `digits` significant digits (`—` when not
    /// finite, sorted last).
    pub fn num(value: f64, digits: usize) -> Cell {
        if !value.is_finite() {
            return Cell::Num {
                value,
                text: "—".into(),
            };
        }
        Cell::Num {
            value,
            text: super::number::significant(value, digits),
        }
    }

    /// A count.
    pub fn int(value: u64) -> Cell {
        Cell::Num {
            value: value as f64,
            text: value.to_string(),
        }
    }

    /// A number with its own text.
    pub fn num_text(value: f64, text: impl Into<String>) -> Cell {
        Cell::Num {
            value,
            text: text.into(),
        }
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped (element text and
/// attribute values alike).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text whose `backquoted` spans become `<code>` (prose in
/// paragraphs, notes and callouts).
fn prose(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        // An unpaired backquote: show the text as written.
        return escape(text);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(p))
            } else {
                escape(p)
            }
        })
        .collect()
}

/// A relative link into the run directory (no scheme, not absolute).
fn is_local(href: &str) -> bool {
    !href.is_empty()
        && !href.starts_with('/')
        && !href.starts_with('\\')
        && !href
            .split('/')
            .next()
            .is_some_and(|first| first.contains(':'))
}

/// A path as a URL path: characters that would end or change it (`%`,
/// `#`, `?`, spaces, controls) percent-encoded.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if "%#? \"<>\\".contains(c) || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Only inline styles and scripts; nothing may be fetched.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
:root { --fg:#1d2327; --muted:#5f6b73; --line:#d9dee2; --bg:#fff; --soft:#f5f7f8;
  --good:#1a7f37; --good-bg:#dafbe1; --bad:#b42318; --bad-bg:#fee4e2;
  --neutral:#4b5563; --neutral-bg:#eef1f4; --caution:#8a5a00; --caution-bg:#fff4d6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { padding: 20px 28px 12px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 8px 28px; border-bottom: 1px solid var(--line); background: var(--soft);
  font-size: 14px; }
nav a { margin-right: 14px; color: #0b5cad; text-decoration: none; white-space: nowrap; }
main { padding: 8px 28px 28px; max-width: 1400px; }
section { margin-top: 22px; }
h2 { font-size: 18px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
p { margin: 6px 0; }
.note { color: var(--muted); font-size: 13px; }
.callout { padding: 8px 12px; border-left: 4px solid; margin: 8px 0; border-radius: 3px; }
.callout.good { border-color: var(--good); background: var(--good-bg); }
.callout.bad { border-color: var(--bad); background: var(--bad-bg); }
.callout.neutral { border-color: var(--neutral); background: var(--neutral-bg); }
.callout.caution { border-color: var(--caution); background: var(--caution-bg); }
.tag { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 13px; white-space: nowrap; }
.tag.good { color: var(--good); background: var(--good-bg); }
.tag.bad { color: var(--bad); background: var(--bad-bg); }
.tag.neutral { color: var(--neutral); background: var(--neutral-bg); }
.tag.caution { color: var(--caution); background: var(--caution-bg); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
code { overflow-wrap: break-word; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #0b5cad; }
pre { background: var(--soft); padding: 10px 12px; overflow-x: auto; border-radius: 4px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 8px 0; }
dt { color: var(--muted); }
dd { margin: 0; min-width: 0; }
.scroll { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code { display: inline-block; min-width: 12ch; max-width: 60ch; }
th.sortable { cursor: pointer; }
th.sortable::after { content: " \2195"; color: var(--muted); font-weight: 400; }
th[aria-sort="ascending"]::after { content: " \2191"; }
th[aria-sort="descending"]::after { content: " \2193"; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 8px 0; max-width: 100%; }
figure svg { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; }
td svg { display: block; }
footer { padding: 12px 28px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); }
@media print { nav { display: none; } }
"#;

/// Click-to-sort for `table.sortable`: numbers by `data-v`, the rest as
/// text; a second click reverses. Reading needs none of it.
const SCRIPT: &str = r#"
(function () {
  function key(td) {
    if (!td) return null;
    var v = td.getAttribute("data-v");
    return v === null ? td.textContent.trim() : parseFloat(v);
  }
  function compare(a, b) {
    var an = typeof a === "number" && !isNaN(a), bn = typeof b === "number" && !isNaN(b);
    if (an && bn) return a - b;
    if (an !== bn) return an ? -1 : 1;
    return String(a).localeCompare(String(b));
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.classList.add("sortable");
      th.setAttribute("tabindex", "0");
      function sort() {
        var down = th.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var c = compare(key(r.cells[col]), key(s.cells[col]));
          return down ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  });
})();
"#;

/// The page as one HTML document.
pub fn render(page: &Page) -> String {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        h,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    );
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(h, "<title>{}</title>", escape(&page.title));
    let _ = writeln!(h, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        h,
        "<header><h1>{}</h1><p>{}</p></header>",
        escape(&page.title),
        escape(&page.subtitle)
    );
    h.push_str("<nav>");
    for s in &page.sections {
        let _ = writeln!(h, "<a href=\"#{}\">{}</a>", escape(&s.id), escape(&s.title));
    }
    h.push_str("</nav>\n<main>\n");
    for s in &page.sections {
        section(&mut h, s);
    }
    h.push_str("</main>\n");
    let _ = writeln!(h, "<footer>{}</footer>", escape(&page.footer));
    let _ = writeln!(h, "<script>{SCRIPT}</script>\n</body>\n</html>");
    h
}

fn section(h: &mut String, s: &Section) {
    let _ = writeln!(
        h,
        "<section id=\"{}\">\n<h2>{}</h2>",
        escape(&s.id),
        escape(&s.title)
    );
    for b in &s.blocks {
        block(h, b);
    }
    h.push_str("</section>\n");
}

fn block(h: &mut String, b: &Block) {
    match b {
        Block::Text(t) => {
            let _ = writeln!(h, "<p>{}</p>", prose(t));
        }
        Block::Note(t) => {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", prose(t));
        }
        Block::Callout(tone, t) => {
            let _ = writeln!(
                h,
                "<div class=\"callout {}\">{}</div>",
                tone.class(),
                prose(t)
            );
        }
        Block::Facts(pairs) => {
            h.push_str("<dl>\n");
            for (k, v) in pairs {
                let _ = write!(h, "<dt>{}</dt><dd>", escape(k));
                cell_content(h, v);
                h.push_str("</dd>\n");
            }
            h.push_str("</dl>\n");
        }
        Block::Table(t) => table(h, t),
        Block::Figures(figs) => {
            h.push_str("<div class=\"figures\">\n");
            for f in figs {
                let _ = writeln!(
                    h,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    f.svg.as_str(),
                    escape(&f.caption)
                );
            }
            h.push_str("</div>\n");
        }
        Block::Code(t) => {
            let _ = writeln!(h, "<pre><code>{}</code></pre>", escape(t));
        }
        Block::Details(summary, blocks) => {
            let _ = writeln!(h, "<details><summary>{}</summary>", escape(summary));
            for b in blocks {
                block(h, b);
            }
            h.push_str("</details>\n");
        }
    }
}

fn table(h: &mut String, t: &Table) {
    let class = if t.sortable {
        " class=\"sortable\""
    } else {
        ""
    };
    let _ = write!(h, "<div class=\"scroll\"><table{class}>\n<thead><tr>");
    for c in &t.header {
        let _ = write!(h, "<th scope=\"col\">{}</th>", escape(c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        h.push_str("<tr>");
        for c in row {
            match c {
                Cell::Num { value, .. } => {
                    let v = if value.is_finite() {
                        format!("{value:e}")
                    } else {
                        "NaN".into()
                    };
                    let _ = write!(h, "<td class=\"num\" data-v=\"{v}\">");
                }
                _ => h.push_str("<td>"),
            }
            cell_content(h, c);
            h.push_str("</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
}

fn cell_content(h: &mut String, c: &Cell) {
    match c {
        Cell::Text(t) => h.push_str(&escape(t)),
        Cell::Code(t) => {
            let _ = write!(h, "<code>{}</code>", escape(t));
        }
        Cell::Num { text, .. } => h.push_str(&escape(text)),
        Cell::Tag(tone, t) => {
            let _ = write!(
                h,
                "<span class=\"tag {}\">{}</span>",
                tone.class(),
                escape(t)
            );
        }
        Cell::Figure(svg) => h.push_str(svg.as_str()),
        Cell::Link { href, text } if is_local(href) => {
            let _ = write!(
                h,
                "<a href=\"{}\"><code>{}</code></a>",
                escape(&percent_encode(href)),
                escape(text)
            );
        }
        Cell::Link { text, .. } => {
            let _ = write!(h, "<code>{}</code>", escape(text));
        }
        Cell::Empty => {}
    }
}

/// Render `page` and replace `path` with it atomically.
pub fn write(path: &Path, page: &Page) -> Result<()> {
    write_atomic(path, render(page).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with(blocks: Vec<Block>) -> Page {
        Page {
            title: "t <1>".into(),
            subtitle: "s".into(),
            sections: vec![Section {
                id: "a".into(),
                title: "A & B".into(),
                blocks,
            }],
            footer: "f".into(),
        }
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let evil = "<script>alert('x')</script> & \"q\"";
        let html = render(&page_with(vec![
            Block::Text(evil.into()),
            Block::Facts(vec![(evil.into(), Cell::code(evil))]),
            Block::Table(Table {
                header: vec![evil.into()],
                rows: vec![vec![Cell::Tag(Tone::Good, evil.into())]],
                sortable: true,
            }),
        ]));
        // The only script element is the page's own.
        assert_eq!(html.matches("<script>").count(), 1, "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
        assert!(html.contains("<title>t &lt;1&gt;</title>"));
    }

    #[test]
    fn backquotes_in_prose_become_code() {
        assert_eq!(prose("run `a <b>` now"), "run <code>a &lt;b&gt;</code> now");
        assert_eq!(prose("odd ` quote"), "odd ` quote");
    }

    #[test]
    fn rows_are_plain_html_and_numbers_carry_sort_keys() {
        let html = render(&page_with(vec![Block::Table(Table {
            header: vec!["name".into(), "value".into()],
            rows: vec![
                vec![Cell::text("b"), Cell::num(12.5, 3)],
                vec![Cell::text("a"), Cell::num(f64::NAN, 3)],
            ],
            sortable: true,
        })]));
        assert!(html.contains("<table class=\"sortable\">"));
        assert!(html.contains("<tr><td>b</td><td class=\"num\" data-v=\"1.25e1\">12.5</td></tr>"));
        assert!(html.contains("<td class=\"num\" data-v=\"NaN\">—</td>"));
    }

    #[test]
    fn nothing_refers_outside_the_page() {
        let html = render(&page_with(vec![
            Block::Facts(vec![
                (
                    "local".into(),
                    Cell::Link {
                        href: "best_kernel/best.cu".into(),
                        text: "best.cu".into(),
                    },
                ),
                (
                    "remote".into(),
                    Cell::Link {
                        href: "https://example.com/x".into(),
                        text: "x".into(),
                    },
                ),
                (
                    "absolute".into(),
                    Cell::Link {
                        href: "/etc/passwd".into(),
                        text: "p".into(),
                    },
                ),
                (
                    "script".into(),
                    Cell::Link {
                        href: "javascript:alert(1)".into(),
                        text: "j".into(),
                    },
                ),
            ]),
            Block::Code("curl https://example.com".into()),
        ]));
        assert!(html.contains("<a href=\"best_kernel/best.cu\">"));
        assert_eq!(percent_encode("a b/c#1?%.txt"), "a%20b/c%231%3F%25.txt");
        assert_eq!(
            html.matches("<a href=").count(),
            2,
            "the nav link and the local one: {html}"
        );
        for attr in ["src=", "<link", "@import", "url("] {
            assert!(!html.contains(attr), "{attr}");
        }
        assert!(html.contains("default-src 'none'"));
    }
}
