//! Settings as flags: the library names a refused setting by its key
//! ([`Setting`]); only the command line spells it as the flag that sets it.

use crate::error::{Error, Setting};

/// The flag that sets `s`: `--` and its key with dashes, except where the
/// flag turns a setting off or has a shorter name.
pub fn flag(s: Setting) -> String {
    let special = match s {
        Setting::IncludeKnown => Some("--include"),
        Setting::Fingerprint => Some("--no-fingerprint"),
        Setting::Racing => Some("--no-racing"),
        Setting::Export => Some("--no-export"),
        Setting::Activations => Some("--act"),
        _ => None,
    };
    match special {
        Some(f) => f.to_string(),
        None => format!("--{}", s.key().replace('_', "-")),
    }
}

/// The error as the command line shows it: settings spelled as flags.
pub fn render(e: &Error) -> String {
    e.render(flag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every setting the library can name is spelled as a flag that some
    /// command of this CLI has: a renamed flag fails here, not in a user's
    /// error message.
    #[test]
    fn every_setting_is_a_flag_of_some_command() {
        let cmd = super::super::Cli::command();
        let mut longs = std::collections::BTreeSet::new();
        fn walk(c: &clap::Command, longs: &mut std::collections::BTreeSet<String>) {
            for a in c.get_arguments() {
                if let Some(l) = a.get_long() {
                    longs.insert(format!("--{l}"));
                }
            }
            for sub in c.get_subcommands() {
                walk(sub, longs);
            }
        }
        walk(&cmd, &mut longs);
        let missing: Vec<String> = Setting::ALL
            .iter()
            .map(|s| flag(*s))
            .filter(|f| !longs.contains(f))
            .collect();
        assert!(missing.is_empty(), "settings without a flag: {missing:?}");
    }

    #[test]
    fn a_setting_error_shows_flags_here_and_keys_in_the_library() {
        let e = Error::setting(format!(
            "{} 16 must be smaller than {} 12",
            Setting::Elite,
            Setting::Pop
        ));
        assert_eq!(
            render(&e),
            "error: --elite 16 must be smaller than --pop 12"
        );
        assert_eq!(
            e.to_string(),
            "error: `elite` 16 must be smaller than `pop` 12"
        );
        assert_eq!(e.exit_code(), 2);
        let Error::Setting(named) = &e else {
            unreachable!()
        };
        assert_eq!(named.settings(), vec![Setting::Elite, Setting::Pop]);
        assert_eq!(
            render(&Error::setting(format!("{} alone", Setting::Racing))),
            "error: --no-racing alone"
        );
        // Any kind of error may name settings (a hint in a failure, a
        // missing tool): the command line spells them as flags too.
        let failed = Error::Failed(format!("no {} left", Setting::Seeds));
        assert_eq!(render(&failed), "error: no --seeds left");
        assert_eq!(failed.to_string(), "error: no `seeds` left");
        // A setting error wrapped into a file's message (a forged
        // config.json) keeps the file's keys.
        let Error::Setting(named) = Error::setting(format!("{} is 0", Setting::Pop)) else {
            unreachable!()
        };
        let wrapped = Error::Usage(format!("config.json: {named}"));
        assert_eq!(render(&wrapped), "error: config.json: `pop` is 0");
        assert_eq!(wrapped.exit_code(), 2);
        assert_eq!(failed.exit_code(), 1);
    }
}
