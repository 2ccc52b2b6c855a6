//! Checked configurations, after linfa's `ParamGuard`: a config is validated once into a
//! [`Checked`] value, the type trainers run on; deserialising a `Checked` runs the same check.
//!
//! Trainers take `impl IntoChecked<C>`: a plain config is checked on the way in, an already
//! checked one is taken as it is (validated once, wherever that happened).

use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A configuration that can check itself.
pub trait Validate {
    /// What a refused configuration is.
    type Error;
    /// `Ok` when every setting is usable.
    fn validate(&self) -> std::result::Result<(), Self::Error>;

    /// The checked form of `self`.
    fn check(self) -> std::result::Result<Checked<Self>, Self::Error>
    where
        Self: Sized,
    {
        Checked::new(self)
    }
}

/// A configuration that passed [`Validate::validate`]. Read it through `Deref`; to change it,
/// take it back with [`Checked::into_inner`] and check again.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T>(T);

impl<T: Validate> Checked<T> {
    /// Checks `config`.
    pub fn new(config: T) -> std::result::Result<Self, T::Error> {
        config.validate()?;
        Ok(Checked(config))
    }
}

impl<T> Checked<T> {
    /// The plain configuration.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Checked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Serialize for Checked<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Checked<T>
where
    T: Deserialize<'de> + Validate,
    T::Error: std::fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Checked::new(T::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A plain configuration (checked here) or a [`Checked`] one (taken as it is), by value or
/// by reference (cloned).
pub trait IntoChecked<T: Validate> {
    /// The checked configuration.
    fn into_checked(self) -> std::result::Result<Checked<T>, T::Error>;
}

impl<T: Validate> IntoChecked<T> for T {
    fn into_checked(self) -> std::result::Result<Checked<T>, T::Error> {
        Checked::new(self)
    }
}

impl<T: Validate> IntoChecked<T> for Checked<T> {
    fn into_checked(self) -> std::result::Result<Checked<T>, T::Error> {
        Ok(self)
    }
}

impl<T: Validate + Clone> IntoChecked<T> for &T {
    fn into_checked(self) -> std::result::Result<Checked<T>, T::Error> {
        Checked::new(self.clone())
    }
}

impl<T: Validate + Clone> IntoChecked<T> for &Checked<T> {
    fn into_checked(self) -> std::result::Result<Checked<T>, T::Error> {
        Ok(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rate {
        lr: f64,
    }

    impl Validate for Rate {
        type Error = String;
        fn validate(&self) -> Result<(), String> {
            if self.lr > 0.0 {
                Ok(())
            } else {
                Err(format!("lr {} must be positive", self.lr))
            }
        }
    }

    fn takes(c: impl IntoChecked<Rate>) -> Result<f64, String> {
        Ok(c.into_checked()?.lr)
    }

    #[test]
    fn plain_configs_are_checked_on_the_way_in_and_deserialising_checks_too() {
        assert_eq!(takes(Rate { lr: 0.1 }), Ok(0.1));
        assert!(takes(Rate { lr: -1.0 }).is_err());
        let checked = Rate { lr: 0.2 }.check().expect("valid");
        assert_eq!(takes(checked.clone()), Ok(0.2));
        assert_eq!(takes(&checked), Ok(0.2));
        assert_eq!(takes(&Rate { lr: 0.3 }), Ok(0.3));
        let json = serde_json::to_string(&checked).expect("json");
        assert_eq!(json, r#"{"lr":0.2}"#);
        assert_eq!(
            serde_json::from_str::<Checked<Rate>>(&json).ok(),
            Some(checked)
        );
        let err =
            serde_json::from_str::<Checked<Rate>>(r#"{"lr":0.0}"#).expect_err("lr 0 is refused");
        assert!(err.to_string().contains("must be positive"), "{err}");
    }
}
