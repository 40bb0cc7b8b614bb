//! Settings named by a word in the configuration (`sampling = "scene"`, `hwaccel = "cuda"`):
//! each is an enum owned by the module that uses it, read once by serde from its name, and
//! any other word is refused with the list of names.

/// A word that names none of a setting's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?}: expected {expected}")]
pub struct UnknownName {
    /// The word as written.
    pub value: String,
    /// The names accepted, in words.
    pub expected: &'static str,
}

/// Gives a setting enum its names: `FromStr` and `TryFrom<String>` (use it with
/// `#[serde(try_from = "String")]`), refusing other words with [`UnknownName`], and
/// `as_str`.
macro_rules! named_setting {
    ($ty:ty, $expected:literal, { $($name:literal => $variant:ident),+ $(,)? }) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::setting::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err($crate::setting::UnknownName {
                        value: s.to_string(),
                        expected: $expected,
                    }),
                }
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::setting::UnknownName;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl $ty {
            /// The name the configuration uses for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }
    };
}

pub(crate) use named_setting;

#[cfg(test)]
mod tests {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
    #[serde(try_from = "String")]
    enum Colour {
        Red,
        Blue,
    }

    named_setting!(Colour, "red or blue", { "red" => Red, "blue" => Blue });

    #[test]
    fn names_read_and_unknown_words_list_the_names() {
        assert_eq!("red".parse::<Colour>().unwrap(), Colour::Red);
        assert_eq!(Colour::Blue.as_str(), "blue");
        let e = "green".parse::<Colour>().unwrap_err();
        assert_eq!(e.to_string(), "\"green\": expected red or blue");
        let v: Colour = serde_json::from_str("\"blue\"").unwrap();
        assert_eq!(v, Colour::Blue);
        let e = serde_json::from_str::<Colour>("\"Red\"").unwrap_err();
        assert!(e.to_string().contains("expected red or blue"), "{e}");
    }
}
