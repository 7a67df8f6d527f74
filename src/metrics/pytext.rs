//! Python's `str.split()` and `str.rstrip()` without arguments, which
//! sacreBLEU applies to every segment. Python's whitespace is Unicode's
//! `White_Space` plus the four information separators U+001C..U+001F
//! (`str.isspace` also counts bidirectional classes B and S), so Rust's
//! `char::is_whitespace` alone would keep them inside tokens.

/// `c.isspace()` in Python 3.
pub fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.split()` in Python: runs of whitespace separate, no empty pieces.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_whitespace).filter(|w| !w.is_empty())
}

/// `s.rstrip()` in Python.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_pythons_set() {
        // `[hex(c) for c in range(0x110000) if chr(c).isspace()]`, Python 3.11.
        let python: Vec<u32> = [
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0,
        ]
        .into_iter()
        .chain([0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000])
        .chain(0x2000..=0x200a)
        .collect();
        let ours: Vec<u32> = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_py_whitespace(c))
            .map(|c| c as u32)
            .collect();
        let mut python = python;
        python.sort_unstable();
        assert_eq!(ours, python);
    }

    #[test]
    fn split_and_rstrip_follow_python() {
        let s = " a\u{1f}b\u{a0} c\u{3000}\t";
        assert_eq!(py_split(s).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(py_rstrip(s), " a\u{1f}b\u{a0} c");
        assert_eq!(py_split("").count(), 0);
    }
}
