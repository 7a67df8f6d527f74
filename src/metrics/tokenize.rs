//! sacreBLEU's `13a` tokenizer (mteval-v13a's, used by WMT), character for
//! character. Python's `re.sub` with a two-character pattern replaces the
//! leftmost non-overlapping matches scanning left to right; [`sub_pairs`]
//! does the same over code points, so punctuation runs such as `a..` come
//! out exactly as sacreBLEU tokenizes them.

use super::pytext::py_split;

/// Tokenize one segment as sacreBLEU's `Tokenizer13a.__call__` does:
///
/// 1. remove `<skipped>`, join `-\n` line breaks, turn `\n` into a space;
/// 2. unescape `&quot;`, `&amp;`, `&lt;`, `&gt;`, in that order, each once
///    over the whole string (so `&amp;lt;` becomes `<`);
/// 3. pad with spaces and put spaces around every ASCII symbol in
///    `{|}~ [\]^_` ` !"#$%& ()*+ :;<=>?@ /`;
/// 4. split `.` and `,` off unless between digits (`3.14`, `1,000` stay),
///    and split `-` after a digit;
/// 5. collapse whitespace (Python's definition) to single spaces.
///
/// BLEU also strips trailing whitespace (Python's `rstrip`) before this.
pub fn tokenize_13a(line: &str) -> String {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let padded: Vec<char> = format!(" {s} ").chars().collect();
    let spaced = pad_symbols(&padded);
    let a = sub_pairs(&spaced, |x, y| !is_digit(x) && is_dot_comma(y), Pad::After);
    let b = sub_pairs(&a, |x, y| is_dot_comma(x) && !is_digit(y), Pad::Before);
    let c = sub_pairs(&b, |x, y| is_digit(x) && y == '-', Pad::After);
    let joined: String = c.into_iter().collect();
    py_split(&joined).collect::<Vec<_>>().join(" ")
}

/// `[0-9]` in Python's `re`: ASCII digits only.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn is_dot_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// `([\{-\~\[-\` -\&\(-\+\:-\@\/])`: the symbols that always stand alone.
fn is_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// `re.sub(symbols, r' \1 ', s)`.
fn pad_symbols(s: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for &c in s {
        if is_symbol(c) {
            out.extend([' ', c, ' ']);
        } else {
            out.push(c);
        }
    }
    out
}

/// Where a matched pair gets its spaces.
#[derive(Clone, Copy)]
enum Pad {
    /// `\1 \2 `
    After,
    /// ` \1 \2`
    Before,
}

/// `re.sub(r'(X)(Y)', repl, s)` for single-character classes X and Y.
fn sub_pairs(s: &[char], hit: impl Fn(char, char) -> bool, pad: Pad) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    let mut i = 0;
    while i < s.len() {
        match s.get(i + 1) {
            Some(&y) if hit(s[i], y) => {
                match pad {
                    Pad::After => out.extend([s[i], ' ', y, ' ']),
                    Pad::Before => out.extend([' ', s[i], ' ', y]),
                }
                i += 2;
            }
            _ => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tokenize_13a;

    #[test]
    fn numbers_keep_their_separators() {
        assert_eq!(
            tokenize_13a("Pi is 3.14, 1,000 or 5-3."),
            "Pi is 3.14 , 1,000 or 5 - 3 ."
        );
    }

    #[test]
    fn overlapping_matches_follow_re_sub() {
        // re.sub leaves the second dot of "a.." to the next pattern.
        assert_eq!(tokenize_13a("a.."), "a . .");
        assert_eq!(tokenize_13a("x.,y"), "x . , y");
    }

    #[test]
    fn entities_unescape_once_in_order() {
        assert_eq!(tokenize_13a("&amp;lt; &amp;quot;"), "< & quot ;");
        assert_eq!(tokenize_13a("a<skipped>b-\nc\nd"), "abc d");
    }
}
