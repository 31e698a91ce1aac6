//! Versioned, reversible schema migrations, shipped in the binary.
//!
//! Each backend has its own SQL (`migrations/<backend>/NNNN_name.{up,down}.sql`)
//! and the same versions. Applied versions are rows of `schema_migrations`.
//! The runners (in [`super::sqlite`] and [`super::postgres`]) apply one
//! migration per transaction, together with its `schema_migrations` row, so
//! a migration that fails leaves the database exactly as it was. This module
//! holds what both runners share: the lists and the choice of the next step.

use super::StoreError;

/// One schema change and its inverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static str,
}

/// SQLite's migrations, oldest first.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        up: include_str!("migrations/sqlite/0001_initial.up.sql"),
        down: include_str!("migrations/sqlite/0001_initial.down.sql"),
    },
    Migration {
        version: 2,
        name: "kayenta",
        up: include_str!("migrations/sqlite/0002_kayenta.up.sql"),
        down: include_str!("migrations/sqlite/0002_kayenta.down.sql"),
    },
    Migration {
        version: 3,
        name: "steps",
        up: include_str!("migrations/sqlite/0003_steps.up.sql"),
        down: include_str!("migrations/sqlite/0003_steps.down.sql"),
    },
];

/// PostgreSQL's migrations, oldest first (the same versions as [`SQLITE`]).
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        up: include_str!("migrations/postgres/0001_initial.up.sql"),
        down: include_str!("migrations/postgres/0001_initial.down.sql"),
    },
    Migration {
        version: 2,
        name: "kayenta",
        up: include_str!("migrations/postgres/0002_kayenta.up.sql"),
        down: include_str!("migrations/postgres/0002_kayenta.down.sql"),
    },
    Migration {
        version: 3,
        name: "steps",
        up: include_str!("migrations/postgres/0003_steps.up.sql"),
        down: include_str!("migrations/postgres/0003_steps.down.sql"),
    },
];

/// Which way to move the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Up,
    Down,
}

/// What a runner does next, given the applied versions: apply (or revert)
/// `Some(migration)`, or stop at `None`. Refuses a database carrying a
/// version this binary does not know: it was migrated by a newer Verdict,
/// and guessing at its schema could lose data.
pub fn next(
    migrations: &[Migration],
    applied: &[i64],
    step: Step,
) -> Result<Option<Migration>, StoreError> {
    if let Some(unknown) = applied
        .iter()
        .find(|v| !migrations.iter().any(|m| m.version == **v))
    {
        return Err(StoreError::UnknownSchema(*unknown));
    }
    Ok(match step {
        Step::Up => migrations
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .min_by_key(|m| m.version)
            .copied(),
        Step::Down => migrations
            .iter()
            .filter(|m| applied.contains(&m.version))
            .max_by_key(|m| m.version)
            .copied(),
    })
}

/// The error of a failed migration.
pub fn failed(migration: &Migration, error: impl std::fmt::Display) -> StoreError {
    StoreError::Migration {
        version: migration.version,
        name: migration.name.to_string(),
        error: error.to_string(),
    }
}

/// Every known migration with its applied time; refuses unknown versions.
pub fn status(
    list: &[Migration],
    applied: &[(i64, f64)],
) -> Result<Vec<super::MigrationStatus>, StoreError> {
    if let Some((unknown, _)) = applied
        .iter()
        .find(|(v, _)| !list.iter().any(|m| m.version == *v))
    {
        return Err(StoreError::UnknownSchema(*unknown));
    }
    Ok(list
        .iter()
        .map(|m| super::MigrationStatus {
            version: m.version,
            name: m.name.to_string(),
            applied_at: applied
                .iter()
                .find(|(v, _)| *v == m.version)
                .map(|(_, t)| *t),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_ship_the_same_versions_in_order() {
        let versions = |ms: &[Migration]| ms.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
        let v = versions(SQLITE);
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
    }

    #[test]
    fn up_takes_the_oldest_pending_and_down_the_newest_applied() {
        let m = |version| Migration {
            version,
            name: "m",
            up: "",
            down: "",
        };
        let list = [m(1), m(2), m(3)];
        assert_eq!(next(&list, &[1], Step::Up).unwrap().unwrap().version, 2);
        assert_eq!(
            next(&list, &[1, 2], Step::Down).unwrap().unwrap().version,
            2
        );
        assert_eq!(next(&list, &[1, 2, 3], Step::Up).unwrap(), None);
        assert_eq!(next(&list, &[], Step::Down).unwrap(), None);
        assert_eq!(
            next(&list, &[1, 7], Step::Up),
            Err(StoreError::UnknownSchema(7))
        );
    }
}
