//! How a setting is declared and documented: the `settings!` macro [`Config`](super::Config) is
//! declared with, the [`SETTINGS`](super::SETTINGS) table it makes, and `--help`'s text of it.

/// Declares every setting once, as `field: Type = default, "meaning";`, after the struct that
/// holds them. Generates that struct, with one public field per setting after the struct's own
/// fields, and [`SETTINGS`], the table `--help` prints and a test holds the README to. The
/// variable is the field's name upper-cased, which is how envy reads it.
macro_rules! settings {
    (
        $(#[$struct_attribute:meta])*
        pub struct $name:ident {
            $($(#[$own_attribute:meta])* $own:ident: $own_type:ty,)*
        }
        $(
            $(#[$attribute:meta])*
            $field:ident: $type:ty = $default:expr, $meaning:literal;
        )*
    ) => {
        $(#[$struct_attribute])*
        pub struct $name {
            $($(#[$own_attribute])* $own: $own_type,)*
            $(
                #[doc = $meaning]
                $(#[$attribute])*
                pub $field: $type,
            )*
        }

        /// Every setting [`Config`] reads, in the order `--help` and the README list them.
        pub const SETTINGS: &[Setting] = {
            use WhenAbsent::*;
            &[$(
                Setting {
                    name: {
                        const FIELD: &str = stringify!($field);
                        const NAME: [u8; FIELD.len()] = ascii_upper_case(FIELD);
                        match std::str::from_utf8(&NAME) {
                            Ok(name) => name,
                            Err(_) => panic!("field names are ASCII"),
                        }
                    },
                    default: WhenAbsent::shown(&$default),
                    meaning: $meaning,
                    when_absent: $default,
                },
            )*]
        };
    };
}

pub(super) use settings;

use super::SETTINGS;

/// A documented setting: the environment variable, its default, and what it means. `--help`
/// lists exactly these, and a test holds the README's configuration table to them.
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// The default as documented: the value itself, or a note in parentheses such as
    /// `(required)`, `(unset)` or `(number of CPUs)`.
    pub default: &'static str,
    /// What the setting means, in Markdown (`--help` shows it without the backticks).
    pub meaning: &'static str,
    /// What the setting is when its variable is absent.
    pub when_absent: WhenAbsent,
}

/// What a setting is when its variable is absent.
#[derive(Clone, Copy, Debug)]
pub enum WhenAbsent {
    /// Nothing: the configuration is refused.
    Required,
    /// `None`.
    Unset,
    /// This text, read exactly as if the variable had been set to it.
    Text(&'static str),
    /// The text the function returns at startup, documented by the note.
    Computed(&'static str, fn() -> String),
}

impl WhenAbsent {
    /// The default as documented: the text itself, or a note in parentheses.
    pub(super) const fn shown(&self) -> &'static str {
        match self {
            Self::Required => "(required)",
            Self::Unset => "(unset)",
            Self::Text(text) => text,
            Self::Computed(note, _) => note,
        }
    }

    /// The text the variable reads as when absent, if any.
    pub(super) fn value(&self) -> Option<String> {
        match self {
            Self::Required | Self::Unset => None,
            Self::Text(text) => Some((*text).to_owned()),
            Self::Computed(_, value) => Some(value()),
        }
    }
}

/// `name` with its ASCII letters upper-cased, as an array of `N` bytes, `N` being its length.
pub(super) const fn ascii_upper_case<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    let mut upper = [0; N];
    let mut i = 0;
    while i < N {
        upper[i] = bytes[i].to_ascii_uppercase();
        i += 1;
    }
    upper
}

/// The settings as a plain-text table, for `--help`.
pub fn settings_help() -> String {
    let width = SETTINGS.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Configuration (environment variables; a .env file in the working directory is read first, set variables win):\n",
    );
    for setting in SETTINGS {
        text.push_str(&format!(
            "  {:width$}  {}  [default: {}]\n",
            setting.name,
            setting.meaning.replace('`', ""),
            setting.default
        ));
    }
    text
}
