//! Golden tests of rendered error messages, compared as exact strings.

use actforge::ir::Library;

fn err(src: &str) -> String {
    match Library::standard().parse(src) {
        Ok(_) => panic!("`{src}` parsed, but an error was expected"),
        Err(d) => d.render(),
    }
}

#[test]
fn seed_t5_formula_as_published_is_missing_a_paren() {
    assert_eq!(
        err("log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0))"),
        "\
error: missing `)` at the end of the formula
 --> formula:1:66
  |
1 | log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0))
  |                                                                  ^ expected `)` here
  |           - this `(` of `log1p_safe` is never closed
"
    );
}

#[test]
fn unclosed_group() {
    assert_eq!(
        err("(x + 1"),
        "\
error: missing `)` at the end of the formula
 --> formula:1:7
  |
1 | (x + 1
  |       ^ expected `)` here
  | - this `(` is never closed
"
    );
}

#[test]
fn unknown_function_suggests_the_closest_name() {
    assert_eq!(
        err("safe_add(safe_dvi(x, 1.0), x)"),
        "\
error: unknown function `safe_dvi`
 --> formula:1:10
  |
1 | safe_add(safe_dvi(x, 1.0), x)
  |          ^^^^^^^^ not an intrinsic or a definition
  = help: did you mean `safe_div`?
"
    );
}

#[test]
fn wrong_argument_count_names_the_function() {
    assert_eq!(
        err("gated_gate(x)"),
        "\
error: `gated_gate` takes 2 arguments but 1 was given
 --> formula:1:1
  |
1 | gated_gate(x)
  | ^^^^^^^^^^^^^ called with 1 argument
  = help: `gated_gate(a, b)` is defined in prelude
"
    );
    assert_eq!(
        err("clamp(x, 1)"),
        "\
error: `clamp` takes 3 arguments but 2 were given
 --> formula:1:1
  |
1 | clamp(x, 1)
  | ^^^^^^^^^^^ called with 2 arguments
  = help: `clamp` is an intrinsic
"
    );
}

#[test]
fn missing_operand_after_an_operator() {
    assert_eq!(
        err("sin(x) *"),
        "\
error: expected an expression after `*`, found the end of the formula
 --> formula:1:9
  |
1 | sin(x) *
  |         ^ expected an expression here
"
    );
}

#[test]
fn bad_separator_in_arguments() {
    assert_eq!(
        err("safe_add(x; 1)"),
        "\
error: expected `,` or `)` after an argument of `safe_add`, found `;`
 --> formula:1:11
  |
1 | safe_add(x; 1)
  |           ^ expected `,` or `)`
  |         - the arguments of `safe_add` start here
"
    );
}

#[test]
fn unmatched_close_paren() {
    assert_eq!(
        err("sin(x))"),
        "\
error: unmatched `)`
 --> formula:1:7
  |
1 | sin(x))
  |       ^ no `(` is open here
"
    );
}

#[test]
fn unknown_name_points_to_the_input() {
    assert_eq!(
        err("y * 2"),
        "\
error: unknown name `y`
 --> formula:1:1
  |
1 | y * 2
  | ^ not defined
  = help: did you mean `x`?
"
    );
    assert_eq!(
        err("sin + 1"),
        "\
error: unknown name `sin`
 --> formula:1:1
  |
1 | sin + 1
  | ^^^ not defined
  = help: `sin` is a function: call it as `sin(…)`
"
    );
}

#[test]
fn exponent_must_be_a_literal() {
    assert_eq!(
        err("x ^ sin(x)"),
        "\
error: the exponent of `^` must be a number literal
 --> formula:1:5
  |
1 | x ^ sin(x)
  |     ^^^^^^ not a literal
  = help: for a variable exponent write `exp(k * log(a))` (a > 0)
"
    );
}

#[test]
fn malformed_numbers() {
    assert_eq!(
        err("1.2.3 + x"),
        "\
error: malformed number `1.2.3`
 --> formula:1:1
  |
1 | 1.2.3 + x
  | ^^^^^ not a decimal literal
  = help: numbers look like `1`, `1.0`, `-0.5`, `3e-2` or `.25`
"
    );
    assert_eq!(
        err("2e"),
        "\
error: malformed number: the exponent has no digits
 --> formula:1:3
  |
1 | 2e
  |   ^ expected digits here
"
    );
}

#[test]
fn comparisons_do_not_chain() {
    assert_eq!(
        err("x < 1 < 2"),
        "\
error: comparisons do not chain: `<` after `<`
 --> formula:1:7
  |
1 | x < 1 < 2
  |       ^ second comparison
  |   - first comparison
  = help: add parentheses, e.g. `(a < b) < c`, or multiply two comparisons for `and`
"
    );
}

#[test]
fn empty_formula() {
    assert_eq!(
        err(""),
        "\
error: expected an expression, found the end of the formula
 --> formula:1:1
  |
1 | 
  | ^ expected a number, `x`, a call or `(` here
"
    );
}

const DEEP_HELP: &str = "  = help: split the formula into named definitions, or regroup long operator chains: `(a+b)+(c+d)` nests less than `a+b+c+d`\n";

/// Depth 10,000 in every recursive form gets the nesting error, not a
/// stack overflow (run on a test thread's small stack, in debug builds).
#[test]
fn nesting_limit_catches_deep_input() {
    let n = 10_000;
    let cases = [
        format!("{}x{}", "(".repeat(n), ")".repeat(n)),
        format!("{}x{}", "sin(".repeat(n), ")".repeat(n)),
        format!("{}x", "-".repeat(n)),
        format!("x{}", "^2".repeat(n)),
        vec!["x"; n].join("+"),
        format!("{}x{}", "safe_add(1, ".repeat(n), ")".repeat(n)),
    ];
    for src in &cases {
        let r = err(src);
        assert!(
            r.starts_with("error: the formula nests too deeply (the limit is 256 levels)\n"),
            "{r}"
        );
        assert!(r.ends_with(DEEP_HELP), "{r}");
    }
}

#[test]
fn deep_input_renders_a_window_not_the_whole_line() {
    let src = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
    let r = err(&src);
    let expected = format!(
        "error: the formula nests too deeply (the limit is 256 levels)\n --> formula:1:257\n  |\n1 | …{}…\n  |{}^ limit exceeded here\n{DEEP_HELP}",
        "(".repeat(100),
        " ".repeat(52)
    );
    assert_eq!(r, expected);
}

#[test]
fn errors_in_definition_files_name_the_file_and_line() {
    let mut lib = Library::standard().clone();
    let d = lib
        .extend("# mine\nhard(a) = clamp(a, -1)\n", "mine.act")
        .unwrap_err();
    assert_eq!(
        d.render(),
        "\
error: `clamp` takes 3 arguments but 2 were given
 --> mine.act:2:11
  |
2 | hard(a) = clamp(a, -1)
  |           ^^^^^^^^^^^^ called with 2 arguments
  = help: `clamp` is an intrinsic
"
    );
    let d = lib.extend("bad(b) = x * b\n", "mine.act").unwrap_err();
    assert_eq!(
        d.render(),
        "\
error: `x` is not visible inside the definition of `bad`
 --> mine.act:1:10
  |
1 | bad(b) = x * b
  |          ^ not a parameter
  = help: add a parameter, e.g. `bad(a, …)`, and pass `x` at the call
"
    );
}

#[test]
fn user_definitions_extend_the_language() {
    let mut lib = Library::standard().clone();
    lib.extend(
        "hardtanh(a) = clamp(a, -1, 1)\nmy_gate(a, b) = gated_gate(hardtanh(a), b)\n",
        "mine.act",
    )
    .unwrap();
    let e = lib.parse("my_gate(x, x)").unwrap();
    let v = actforge::ir::eval_f64(&e.graph, e.root, 3.0);
    assert!((v - actforge::ir::ops::sigmoid_f64(3.0)).abs() < 1e-12);
}

#[test]
fn control_characters_are_escaped_and_the_caret_stays_under_them() {
    assert_eq!(
        err("x\u{0} + \u{7f}1"),
        "\
error: expected an operator or the end of the formula, found `\\u{0}`
 --> formula:1:2
  |
1 | x\\u{0} + \\u{7f}1
  |  ^^^^^ unexpected here
"
    );
    assert_eq!(
        err("safe_add(x, \u{1b}[31m)"),
        "\
error: expected an expression after `,`, found `\\u{1b}`
 --> formula:1:13
  |
1 | safe_add(x, \\u{1b}[31m)
  |             ^^^^^^ expected an expression here
"
    );
}
