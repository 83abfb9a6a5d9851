//! Where a store lives: a SQLite file (one machine) or a PostgreSQL database (a cluster:
//! every node's workers write to one server). `--db` and `WORKBENCH_DB` take either.

use std::fmt;
use std::path::{Path, PathBuf};

/// A store's address: a SQLite path, or a `postgresql://user@host:port/db` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Locator {
    /// A URL (`postgresql://` or `postgres://`) is a PostgreSQL store; anything else a path.
    pub fn parse(s: &str) -> Locator {
        if is_postgres_url(s) {
            Locator::Postgres(s.to_string())
        } else {
            Locator::Sqlite(PathBuf::from(s))
        }
    }

    /// `$WORKBENCH_DB`, else `./workbench.db`.
    pub fn from_env() -> Locator {
        match std::env::var_os("WORKBENCH_DB") {
            Some(v) => Locator::parse(&v.to_string_lossy()),
            None => Locator::Sqlite(PathBuf::from("workbench.db")),
        }
    }

    /// The SQLite file, or `None` for a server.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Locator::Sqlite(p) => Some(p),
            Locator::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Locator::Postgres(_))
    }

    /// The string a child process is given as `--db` (the path, or the URL as given).
    pub fn as_arg(&self) -> std::ffi::OsString {
        match self {
            Locator::Sqlite(p) => p.clone().into_os_string(),
            Locator::Postgres(u) => u.into(),
        }
    }
}

fn is_postgres_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("postgresql://") || lower.starts_with("postgres://")
}

/// The URL with its password (if any) replaced by `***`, for messages and listings.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = match rest.find('@') {
        Some(at) if !rest[..at].contains('/') => (&rest[..at], &rest[at..]),
        _ => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{tail}"),
        None => url.to_string(),
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Sqlite(p) => write!(f, "{}", p.display()),
            Locator::Postgres(u) => write!(f, "{}", redact(u)),
        }
    }
}

impl From<&Path> for Locator {
    fn from(p: &Path) -> Locator {
        Locator::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Locator {
    fn from(p: &PathBuf) -> Locator {
        Locator::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Locator {
    fn from(p: PathBuf) -> Locator {
        Locator::Sqlite(p)
    }
}

impl From<&Locator> for Locator {
    fn from(l: &Locator) -> Locator {
        l.clone()
    }
}

impl std::str::FromStr for Locator {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Locator, Self::Err> {
        Ok(Locator::parse(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_servers_and_the_rest_paths() {
        assert_eq!(
            Locator::parse("postgresql://u@h:5432/db"),
            Locator::Postgres("postgresql://u@h:5432/db".into())
        );
        assert!(Locator::parse("POSTGRES://h/db").is_postgres());
        assert_eq!(
            Locator::parse("runs/postgresql.db"),
            Locator::Sqlite("runs/postgresql.db".into())
        );
        assert_eq!(
            Locator::parse("./postgresql://x").sqlite_path(),
            Some(Path::new("./postgresql://x"))
        );
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgresql://me:secret@db:5432/x"),
            "postgresql://me:***@db:5432/x"
        );
        assert_eq!(redact("postgresql://me@db/x"), "postgresql://me@db/x");
        assert_eq!(redact("postgresql://db/x?a=b@c"), "postgresql://db/x?a=b@c");
        assert_eq!(
            Locator::parse("postgresql://a:b@h/d").to_string(),
            "postgresql://a:***@h/d"
        );
    }
}
