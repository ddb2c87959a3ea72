//! `[[campaign]]`: a campaign's own keys and, in the same table, the [`Overrides`] it sets over
//! `[defaults]`. serde's `flatten` cannot reject unknown keys (and buffers values, losing the
//! positions [`Spanned`] needs), so this table is read by hand, in one pass over the parser's
//! own map: the campaign's keys are taken out as they come and every other key goes to the
//! derived deserializer of [`Overrides`], the one declaration of the override keys
//! (ARCHITECTURE.md rule 13). An unknown key fails while its key is read, so the parser puts
//! it at the key's line and column, with the full list of keys, as a derived
//! `deny_unknown_fields` struct would.

use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::{MatrixSpec, Overrides, SearchTable, SloTable, StepSpec};

/// `[[campaign]]`.
#[derive(Debug)]
pub struct CampaignSpec {
    pub name: Spanned<String>,
    pub description: Option<String>,
    /// The settings this campaign sets over `[defaults]` (written beside its own keys).
    pub overrides: Overrides,
    pub steps: Option<Vec<Spanned<StepSpec>>>,
    pub matrix: Option<Spanned<MatrixSpec>>,
    /// A capacity search over the matrix's topologies instead of listed rates.
    pub search: Option<Spanned<SearchTable>>,
    /// What a probe of the search must meet.
    pub slo: Option<Spanned<SloTable>>,
}

/// The campaign's own keys, as read so far.
#[derive(Default)]
struct Own {
    name: Option<Spanned<String>>,
    description: Option<String>,
    steps: Option<Vec<Spanned<StepSpec>>>,
    matrix: Option<Spanned<MatrixSpec>>,
    search: Option<Spanned<SearchTable>>,
    slo: Option<Spanned<SloTable>>,
}

impl Own {
    /// The keys [`Own::read`] takes: those listed before the override keys, then after (the
    /// order of the list an unknown key's error shows).
    const FIRST: [&'static str; 2] = ["name", "description"];
    const LAST: [&'static str; 4] = ["step", "matrix", "search", "slo"];

    fn key(key: &str) -> Option<&'static str> {
        Own::FIRST
            .iter()
            .chain(&Own::LAST)
            .copied()
            .find(|k| *k == key)
    }

    /// Reads the value of one of the campaign's own keys.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "name" => self.name = Some(map.next_value()?),
            "description" => self.description = Some(map.next_value()?),
            "step" => self.steps = Some(map.next_value()?),
            "matrix" => self.matrix = Some(map.next_value()?),
            "search" => self.search = Some(map.next_value()?),
            "slo" => self.slo = Some(map.next_value()?),
            _ => unreachable!("`{key}` is in Own::FIRST or Own::LAST but not read"),
        }
        Ok(())
    }

    fn into_spec<E: de::Error>(self, overrides: Overrides) -> Result<CampaignSpec, E> {
        Ok(CampaignSpec {
            name: self.name.ok_or_else(|| E::missing_field("name"))?,
            description: self.description,
            overrides,
            steps: self.steps,
            matrix: self.matrix,
            search: self.search,
            slo: self.slo,
        })
    }
}

/// Every key of a campaign, for the error on an unknown one: built once, from the override
/// keys the derived deserializer of [`Overrides`] declares.
fn all_keys(overrides: &'static [&'static str]) -> &'static [&'static str] {
    static ALL: OnceLock<Vec<&'static str>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = Own::FIRST.to_vec();
        all.extend(overrides);
        all.extend(Own::LAST);
        all
    })
}

impl<'de> Deserialize<'de> for CampaignSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CampaignVisitor)
    }
}

struct CampaignVisitor;

impl<'de> Visitor<'de> for CampaignVisitor {
    type Value = CampaignSpec;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // What the derived deserializer said, so a wrong type reads as before.
        f.write_str("struct CampaignSpec")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CampaignSpec, A::Error> {
        let mut own = Own::default();
        let overrides = Overrides::deserialize(Split {
            map,
            own: &mut own,
            overrides: &[],
        })?;
        own.into_spec(overrides)
    }
}

/// The campaign's map as [`Overrides`] sees it: its own keys read into `own` on the way, the
/// rest passed through.
struct Split<'a, A> {
    map: A,
    own: &'a mut Own,
    /// The override keys, as the derived deserializer of [`Overrides`] declares them.
    overrides: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Split<'_, A> {
    type Error = A::Error;

    /// Not reached: the derived deserializer of [`Overrides`] asks for a struct. Were it to, no
    /// key would be an override key, so nothing would be accepted silently.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.overrides = fields;
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Split<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let mut seed = Some(seed);
        loop {
            let key = KeySeed {
                seed: &mut seed,
                overrides: self.overrides,
            };
            match self.map.next_key_seed(key)? {
                None => return Ok(None),
                Some(Key::Override(k)) => return Ok(Some(k)),
                Some(Key::Own(name)) => self.own.read(name, &mut self.map)?,
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A key of the campaign's table: one of its own, or an override key as [`Overrides`] reads it.
enum Key<K> {
    Own(&'static str),
    Override(K),
}

/// Reads one key inside the parser's own key read, so that an error on it carries the key's
/// position. `seed` is taken only by an override key: the caller reads on past its own keys.
struct KeySeed<'s, K> {
    seed: &'s mut Option<K>,
    overrides: &'static [&'static str],
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, K> {
    type Value = Key<K::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(d)?;
        if let Some(own) = Own::key(&key) {
            return Ok(Key::Own(own));
        }
        if !self.overrides.contains(&key.as_str()) {
            return Err(de::Error::unknown_field(&key, all_keys(self.overrides)));
        }
        let seed = self
            .seed
            .take()
            .expect("one override key per next_key_seed call");
        let key: de::value::StringDeserializer<D::Error> = key.into_deserializer();
        seed.deserialize(key).map(Key::Override)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(text: &str) -> Result<CampaignSpec, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn own_keys_and_overrides_are_read_from_one_table() {
        let c = campaign(
            "name = \"c\"\ndescription = \"d\"\ntimeout = \"3s\"\nmax_in_flight = 7\n\
             [[step]]\nrate = 1\nduration = \"1s\"\n",
        )
        .unwrap();
        assert_eq!(c.name.get_ref(), "c");
        assert_eq!(c.description.as_deref(), Some("d"));
        assert_eq!(c.overrides.timeout.map(|d| d.0.as_secs()), Some(3));
        assert_eq!(c.overrides.max_in_flight.map(|n| n.0), Some(7));
        assert_eq!(c.steps.map(|s| s.len()), Some(1));
    }

    #[test]
    fn an_unknown_key_lists_every_key_in_declaration_order() {
        let e = campaign("name = \"c\"\nzz = 1\n").unwrap_err().to_string();
        assert!(
            e.contains(
                "unknown field `zz`, expected one of `name`, `description`, `timeout`, \
                 `max_in_flight`, `connections`, `max_connections`, `warmup`, `pause`, `store`, \
                 `arrival`, `seed`, `tls`, `io`, `step`, `matrix`, `search`, `slo`"
            ),
            "{e}"
        );
        assert!(e.contains("line 2, column 1"), "{e}");
    }

    #[test]
    fn a_missing_name_and_a_bad_override_value_are_errors() {
        let e = campaign("timeout = \"1s\"\n").unwrap_err().to_string();
        assert!(e.contains("missing field `name`"), "{e}");
        let e = campaign("name = \"c\"\ntimeout = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, column 11"), "{e}");
    }
}
