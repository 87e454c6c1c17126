//! The stack's secrets file (written by `scripts/stack up`): KEY=VALUE lines.
//! Values are kept in memory only; nothing here is ever logged.

use std::collections::HashMap;
use std::path::Path;

pub struct StackSecrets {
    values: HashMap<String, String>,
}

impl StackSecrets {
    /// Missing file: no secrets (operations that need them say so when used).
    pub fn load(path: &Path) -> StackSecrets {
        let values = std::fs::read_to_string(path)
            .map(|text| {
                text.lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        StackSecrets { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Every value (for masking them wherever they might appear).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.values().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_key_values_and_ignores_comments() {
        let dir = std::env::temp_dir().join(format!("pgc-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s.env");
        std::fs::write(&f, "# c\nA=1\nB = two=2\nEMPTY=\n").unwrap();
        let s = super::StackSecrets::load(&f);
        assert_eq!(s.get("A"), Some("1"));
        assert_eq!(s.get("B"), Some("two=2"));
        assert_eq!(s.get("EMPTY"), None);
        assert!(super::StackSecrets::load(&dir.join("missing")).is_empty());
    }
}
